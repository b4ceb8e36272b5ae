"""Environment benchmark: ToolEnv.step overhead, and the HumanEval oracle at several concurrencies.

Run: `.venv/bin/python benchmarks/env.py`. Prints markdown tables (copied into
the README's Performance section). The overhead is measured against the same
tool called directly on the same sandbox, in the same process.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import toolgym.envs  # noqa: F401 - registers the envs
from toolgym.envs.checker import run_actions
from toolgym.envs.code.env import CodeEnv
from toolgym.sandbox.docker import SandboxSpec
from toolgym.sandbox.pool import PoolConfig, SandboxPool
from toolgym.tools import PythonTool, render_tool_call
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
    await tool(sb, code="print(1)")
    for _ in range(n):
        t = time.perf_counter()
        await sb.aexec(["python3", "-c", "print(1)"])
        raw_exec.append(time.perf_counter() - t)
        t = time.perf_counter()
        await tool(sb, code="print(1)")
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


async def oracle_sweep(concurrencies: tuple[int, ...] = (1, 8, 32)) -> None:
    print("| oracle on 164 HumanEval tasks | wall s | episodes/min | success |\n|---|---:|---:|---:|")
    for c in concurrencies:
        async with SandboxPool(SandboxSpec(), PoolConfig(size=min(c, 16), max_size=c)) as pool:
            envs = [CodeEnv("humaneval", pool=pool) for _ in range(c)]
            ids = list(envs[0].tasks.ids())
            rewards: list[float] = []
            start = time.perf_counter()

            async def worker(env: CodeEnv) -> None:
                while ids:
                    task = env.tasks.get(ids.pop())
                    reward, _, _ = await run_actions(env, env.reference_actions(task),
                                                     options={"task_id": task.id})
                    rewards.append(reward)
                await env.aclose()

            await asyncio.gather(*(worker(e) for e in envs))
            wall = time.perf_counter() - start
        print(f"| concurrency {c} | {wall:.1f} | {len(rewards) / wall * 60:.0f} | "
              f"{sum(rewards) / len(rewards):.3f} |")


async def main() -> None:
    await step_overhead()
    await oracle_sweep()


if __name__ == "__main__":
    asyncio.run(main())
