"""Search environment benchmark: tool-call latency, and the oracle at concurrency 8.

Run: `.venv/bin/python benchmarks/search.py [--episodes N] [--concurrency C]`. Prints
markdown tables. "first search" is the first search after a sandbox reset. The
baseline sandbox (no service) starts an index server of its own in every episode
(the reset kills it); toolgym's default (``search_sandbox``) runs one resident
server as the sandbox's service, which resets leave alone. Both are measured in
this process, and the oracle's throughput with each.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import toolgym.envs  # noqa: F401 - registers the envs
from toolgym.envs.checker import run_actions
from toolgym.envs.search.env import SearchEnv, search_sandbox
from toolgym.envs.search.tasks import IMAGE, search_tasks
from toolgym.envs.search.tool import open_tool, search_tool
from toolgym.sandbox.docker import DockerSandbox, SandboxSpec
from toolgym.sandbox.pool import PoolConfig, SandboxPool
from toolgym.tools import ToolContext


def _row(name: str, samples: list[float]) -> str:
    s = sorted(samples)
    p95 = s[int(0.95 * (len(s) - 1))]
    return f"| {name} | {len(s)} | {statistics.median(s) * 1000:.1f} | {p95 * 1000:.1f} |"


SPECS = {"own server per episode (baseline)": SandboxSpec(image=IMAGE),
         "resident server (default)": search_sandbox(IMAGE)}


async def first_search(spec: SandboxSpec, queries: list[str], colds: int) -> list[float]:
    """Seconds of the first search after each of ``colds`` resets of one sandbox."""
    search = search_tool()
    sandbox = await DockerSandbox.acreate(spec)
    cold = []
    try:
        await search(ToolContext(sandbox), query=queries[-1])  # the resident server is up
        for i in range(colds):
            await sandbox.areset()
            start = time.perf_counter()
            await search(ToolContext(sandbox), query=queries[i])
            cold.append(time.perf_counter() - start)
    finally:
        await sandbox.aclose()
    return cold


async def tool_latency(n: int = 100, colds: int = 10) -> None:
    """p50/p95 of each tool called directly on one sandbox, and of an env step."""
    tasks = list(search_tasks(IMAGE))
    queries = [hop["query"] for t in tasks for hop in t.data["hops"] if hop.get("query")]
    docs = [(hop["doc_id"], hop["page"]) for t in tasks for hop in t.data["hops"]]
    search, open_doc = search_tool(), open_tool()
    firsts = {name: await first_search(spec, queries, colds) for name, spec in SPECS.items()}
    sandbox = await DockerSandbox.acreate(search_sandbox(IMAGE))
    warm, opened = [], []
    try:
        await search(ToolContext(sandbox), query=queries[0])
        for i in range(n):
            start = time.perf_counter()
            await search(ToolContext(sandbox), query=queries[(i * 7) % len(queries)])
            warm.append(time.perf_counter() - start)
            doc_id, page = docs[(i * 13) % len(docs)]
            start = time.perf_counter()
            await open_doc(ToolContext(sandbox), doc_id=doc_id, page=page)
            opened.append(time.perf_counter() - start)
    finally:
        await sandbox.aclose()
    print("| tool call | n | p50 ms | p95 ms |\n|---|---:|---:|---:|")
    for name, samples in firsts.items():
        print(_row(f"first search after a reset, {name}", samples))
    print(_row("search, k=5", warm))
    print(_row("open", opened))
    print()


async def oracle(episodes: int, concurrency: int, spec: SandboxSpec) -> tuple[int, float, float]:
    """The oracle over ``episodes`` tasks, ``concurrency`` in flight on one pool of ``spec``.

    Returns:
        Episodes run, episodes per minute, the median time per env call in seconds.
    """
    async with SandboxPool(spec, PoolConfig(size=concurrency, max_size=concurrency)) as pool:
        envs = [SearchEnv(provider=pool) for _ in range(concurrency)]
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
    assert sum(rewards) == len(rewards), "the oracle failed an episode"
    return len(rewards), len(rewards) / wall * 60, statistics.median(steps)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--episodes", type=int, default=160)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    await tool_latency()
    print(f"| oracle, concurrency {args.concurrency}, sandbox | episodes | episodes/min | "
          "p50 ms per env call |\n|---|---:|---:|---:|")
    rates = {}
    for name, spec in SPECS.items():
        n, rates[name], per_call = await oracle(args.episodes, args.concurrency, spec)
        print(f"| {name} | {n} | {rates[name]:.0f} | {per_call * 1000:.0f} |")
    base, ours = rates.values()
    print(f"\nresident server: {ours / base:.2f}x the episodes per minute of the baseline")


if __name__ == "__main__":
    asyncio.run(main())
