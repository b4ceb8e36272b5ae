"""Environment benchmark: ToolEnv.step overhead, and an env's oracle at several concurrencies.

Run: `.venv/bin/python benchmarks/env.py` (HumanEval: step overhead, then the
oracle at concurrency 1, 8, 32), or `benchmarks/env.py --env toolgym/SQL-v0
--concurrency 8` (any env with reference actions: its oracle only). Prints
markdown tables (copied into the README's Performance section): p50/p95 of
each kind of step (one row per tool, one for the final answer, which includes
the sandbox reset and the verifier) and episodes per minute. The overhead is
measured against the same tool called directly on the same sandbox, in the
same process.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import defaultdict
from typing import Any

import toolgym.envs  # noqa: F401 - registers the envs
from toolgym.envs.code.env import CodeEnv
from toolgym.envs.registration import make_async
from toolgym.sandbox.pool import PoolConfig, SandboxPool
from toolgym.sandbox.spec import SandboxSpec
from toolgym.tools import PythonTool, ToolContext, render_tool_call
from toolgym.tools.call import ToolCall

CALL = render_tool_call(ToolCall("python", {"code": "print(1)"}))


def _ms(samples: list[float]) -> str:
    s = sorted(samples)
    return f"{statistics.median(s) * 1000:.2f} | {s[int(0.95 * (len(s) - 1))] * 1000:.2f}"


async def step_overhead(n: int = 100) -> None:
    env = CodeEnv("humaneval")
    await env.areset(seed=0)
    sb, tool = env.sandbox, PythonTool()
    raw_exec, raw_tool, steps = [], [], []
    await tool(ToolContext(sb), code="print(1)")
    for _ in range(n):
        t = time.perf_counter()
        await sb.aexec(["python3", "-c", "print(1)"])
        raw_exec.append(time.perf_counter() - t)
        t = time.perf_counter()
        await tool(ToolContext(sb), code="print(1)")
        raw_tool.append(time.perf_counter() - t)
        t = time.perf_counter()
        await env.astep(CALL)
        steps.append(time.perf_counter() - t)
    await env.aclose()
    print("| `python print(1)` | p50 ms | p95 ms |\n|---|---:|---:|")
    print(f"| sandbox exec `python3 -c` | {_ms(raw_exec)} |")
    print(f"| python tool on the sandbox | {_ms(raw_tool)} |")
    print(f"| `ToolEnv.step` with that tool call | {_ms(steps)} |")
    overhead = statistics.median(steps) - statistics.median(raw_tool)
    print(f"\nstep overhead over the tool call: {overhead * 1000:.2f} ms (p50 difference)\n")


async def _timed_episode(env: Any, task_id: str, actions: list[str],
                         steps: dict[str, list[float]]) -> float:
    """Play ``actions``; add each step's seconds to ``steps`` under its tool (or "answer")."""
    await env.areset(options={"task_id": task_id})
    reward = 0.0
    for action in actions:
        t = time.perf_counter()
        _, reward, terminated, truncated, info = await env.astep(action)
        tools = [m.get("name", "?") for m in info["new_messages"] if m["role"] == "tool"]
        steps["+".join(tools) if tools else "answer (reset + verify)"].append(
            time.perf_counter() - t)
        if terminated or truncated:
            break
    return float(reward)


async def _sweep_once(env_id: str, spec: SandboxSpec, c: int,
                      ) -> tuple[float, list[float], dict[str, list[float]]]:
    """Every task's oracle, ``c`` envs sharing one pool; (wall s, rewards, step seconds)."""
    rewards: list[float] = []
    steps: dict[str, list[float]] = defaultdict(list)
    async with SandboxPool(spec, PoolConfig(size=min(c, 16), max_size=c)) as pool:
        envs = [make_async(env_id, provider=pool) for _ in range(c)]
        ids = list(envs[0].unwrapped.tasks.ids())
        start = time.perf_counter()

        async def worker(env: Any) -> None:
            while ids:
                task = env.unwrapped.tasks.get(ids.pop())
                actions = env.unwrapped.reference_actions(task)
                rewards.append(await _timed_episode(env, task.id, actions, steps))
            await env.aclose()

        await asyncio.gather(*(worker(e) for e in envs))
        wall = time.perf_counter() - start
    return wall, rewards, steps


async def oracle_sweep(env_id: str = "toolgym/HumanEval-v0",
                       concurrencies: tuple[int, ...] = (1, 8, 32)) -> None:
    """The oracle on every task of ``env_id`` at each concurrency: step latencies, throughput."""
    probe = make_async(env_id)
    spec, n_tasks = probe.unwrapped.sandbox_spec, len(probe.unwrapped.tasks)
    await probe.aclose()
    rows = []
    for c in concurrencies:
        wall, rewards, steps = await _sweep_once(env_id, spec, c)
        rows.append(f"| concurrency {c} | {wall:.1f} | {len(rewards) / wall * 60:.0f} | "
                    f"{sum(rewards) / len(rewards):.3f} |")
        print(f"| {env_id} oracle, concurrency {c}: step | calls | p50 ms | p95 ms |\n"
              "|---|---:|---:|---:|")
        for kind, samples in sorted(steps.items()):
            print(f"| {kind} | {len(samples)} | {_ms(samples)} |")
        print()
    print(f"| oracle on {n_tasks} {env_id} tasks | wall s | episodes/min | success |\n"
          "|---|---:|---:|---:|")
    print("\n".join(rows))


def main() -> None:
    """Parse the options and run the benchmarks they pick."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="toolgym/HumanEval-v0", help="env id to benchmark")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32],
                        help="episodes in flight, one sweep each")
    args = parser.parse_args()

    async def run() -> None:
        if args.env == "toolgym/HumanEval-v0":
            await step_overhead()
        await oracle_sweep(args.env, tuple(args.concurrency))

    asyncio.run(run())


if __name__ == "__main__":
    main()
