"""Search environment benchmark: tool-call latency, and the oracle at concurrency 8.

Run: `.venv/bin/python benchmarks/search.py [--episodes N] [--concurrency C]`. Prints
markdown tables. "cold search" is the first search of an episode, which starts the
index server (the sandbox reset kills it); "search" and "open" are later calls.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import toolgym.envs  # noqa: F401 - registers the envs
from toolgym.envs.checker import run_actions
from toolgym.envs.search.env import SearchEnv
from toolgym.envs.search.tasks import IMAGE, search_tasks
from toolgym.envs.search.tool import open_tool, search_tool
from toolgym.sandbox.docker import DockerSandbox, SandboxSpec
from toolgym.sandbox.pool import PoolConfig, SandboxPool


def _row(name: str, samples: list[float]) -> str:
    s = sorted(samples)
    p95 = s[int(0.95 * (len(s) - 1))]
    return f"| {name} | {len(s)} | {statistics.median(s) * 1000:.1f} | {p95 * 1000:.1f} |"


async def tool_latency(n: int = 100, colds: int = 10) -> None:
    """p50/p95 of each tool called directly on one sandbox, and of an env step."""
    tasks = list(search_tasks(IMAGE))
    queries = [hop["query"] for t in tasks for hop in t.data["hops"] if hop.get("query")]
    docs = [(hop["doc_id"], hop["page"]) for t in tasks for hop in t.data["hops"]]
    search, open_doc = search_tool(), open_tool()
    sandbox = await DockerSandbox.acreate(SandboxSpec(image=IMAGE))
    cold, warm, opened = [], [], []
    try:
        for i in range(colds):
            await sandbox.areset()
            start = time.perf_counter()
            await search(sandbox, query=queries[i])
            cold.append(time.perf_counter() - start)
        for i in range(n):
            start = time.perf_counter()
            await search(sandbox, query=queries[(i * 7) % len(queries)])
            warm.append(time.perf_counter() - start)
            doc_id, page = docs[(i * 13) % len(docs)]
            start = time.perf_counter()
            await open_doc(sandbox, doc_id=doc_id, page=page)
            opened.append(time.perf_counter() - start)
    finally:
        await sandbox.aclose()
    print("| tool call | n | p50 ms | p95 ms |\n|---|---:|---:|---:|")
    print(_row("cold search (starts the index server)", cold))
    print(_row("search, k=5", warm))
    print(_row("open", opened))
    print()


async def oracle(episodes: int, concurrency: int) -> None:
    """The oracle over ``episodes`` tasks, ``concurrency`` episodes in flight on one pool."""
    async with SandboxPool(SandboxSpec(image=IMAGE),
                           PoolConfig(size=concurrency, max_size=concurrency)) as pool:
        envs = [SearchEnv(pool=pool) for _ in range(concurrency)]
        ids = envs[0].tasks.ids()
        queue = [ids[i % len(ids)] for i in range(episodes)]
        rewards: list[float] = []
        steps: list[float] = []
        start = time.perf_counter()

        async def worker(env: SearchEnv) -> None:
            while queue:
                task = env.tasks.get(queue.pop())
                began = time.perf_counter()
                reward, _, obs = await run_actions(env, env.reference_actions(task),
                                                   options={"task_id": task.id})
                steps.append((time.perf_counter() - began) / len(obs))
                rewards.append(reward)
            await env.aclose()

        await asyncio.gather(*(worker(e) for e in envs))
        wall = time.perf_counter() - start
    print(f"| oracle, concurrency {concurrency} | episodes | wall s | episodes/min | success |")
    print("|---|---:|---:|---:|---:|")
    print(f"| {len(rewards)} episodes | {len(rewards)} | {wall:.1f} | "
          f"{len(rewards) / wall * 60:.0f} | {sum(rewards) / len(rewards):.3f} |")
    print(f"\nmean time per env call (reset or step) in those episodes: "
          f"p50 {statistics.median(steps) * 1000:.0f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=160)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    await tool_latency()
    await oracle(args.episodes, args.concurrency)


if __name__ == "__main__":
    asyncio.run(main())
