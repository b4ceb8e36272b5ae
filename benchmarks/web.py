"""Web environment benchmark: browser tool-call latency and oracle episodes per minute.

Run: `.venv/bin/python benchmarks/web.py` (the oracle on 100 tasks spread
over all 25 kinds, at concurrency 1, 4 and 8), or with `--tasks N
--concurrency 2 8`. Prints markdown tables: p50/p95 of each tool call and of
reset (sandbox reset + Chromium start + first page) and of the final answer
(the verifier reading the page), then episodes per minute and success. The
envs share one sandbox pool of the ``toolgym/web`` image, like a rollout run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import defaultdict
from typing import Any

import toolgym.envs  # noqa: F401 - registers the envs
from toolgym.envs.registration import make_async
from toolgym.envs.web.env import WEB_SANDBOX
from toolgym.sandbox.pool import PoolConfig, SandboxPool

ENV_ID = "toolgym/Web-v0"


def _ms(samples: list[float]) -> str:
    s = sorted(samples)
    return f"{statistics.median(s) * 1000:.0f} | {s[int(0.95 * (len(s) - 1))] * 1000:.0f}"


async def _episode(env: Any, task_id: str, steps: dict[str, list[float]]) -> float:
    t = time.perf_counter()
    await env.areset(options={"task_id": task_id})
    steps["reset (Chromium start + page)"].append(time.perf_counter() - t)
    reward = 0.0
    for action in env.unwrapped.reference_actions(env.unwrapped.tasks.get(task_id)):
        t = time.perf_counter()
        _, reward, terminated, truncated, info = await env.astep(action)
        tools = [m.get("name", "?") for m in info["new_messages"] if m["role"] == "tool"]
        steps["+".join(tools) if tools else "answer (verify)"].append(time.perf_counter() - t)
        if terminated or truncated:
            break
    return float(reward)


async def sweep(task_ids: list[str], concurrency: int) -> tuple[float, list[float], dict]:
    """The oracle on ``task_ids`` with ``concurrency`` envs on one pool."""
    rewards: list[float] = []
    steps: dict[str, list[float]] = defaultdict(list)
    async with SandboxPool(WEB_SANDBOX, PoolConfig(size=concurrency, max_size=concurrency)) as pool:
        envs = [make_async(ENV_ID, provider=pool) for _ in range(concurrency)]
        todo = list(reversed(task_ids))
        start = time.perf_counter()

        async def worker(env: Any) -> None:
            while todo:
                rewards.append(await _episode(env, todo.pop(), steps))
            await env.aclose()

        await asyncio.gather(*(worker(e) for e in envs))
        wall = time.perf_counter() - start
    return wall, rewards, steps


async def main(n_tasks: int, concurrencies: list[int]) -> None:
    """Print one latency table per concurrency, then the throughput table."""
    probe = make_async(ENV_ID)
    ids = probe.unwrapped.tasks.ids()
    await probe.aclose()
    task_ids = ids[:: max(1, len(ids) // n_tasks)][:n_tasks]
    rows = []
    for c in concurrencies:
        wall, rewards, steps = await sweep(task_ids, c)
        rows.append(f"| concurrency {c} | {len(rewards)} | {wall:.1f} | "
                    f"{len(rewards) / wall * 60:.0f} | {sum(rewards) / len(rewards):.2f} |")
        print(f"| {ENV_ID} oracle, concurrency {c} | calls | p50 ms | p95 ms |")
        print("|---|---:|---:|---:|")
        for kind, samples in sorted(steps.items()):
            print(f"| {kind} | {len(samples)} | {_ms(samples)} |")
        print(flush=True)
    print("| oracle | episodes | wall s | episodes/min | success |\n|---|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100, help="tasks per sweep (all kinds)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()
    asyncio.run(main(args.tasks, args.concurrency))
