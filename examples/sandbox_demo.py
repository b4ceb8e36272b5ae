"""The main job until the trainer lands: a warm sandbox pool running code, with timings.

Starts a pool of Docker sandboxes, runs 32 small "episodes" on it at once
(each writes a program, runs it, and checks a limit), then prints the
latencies it measured. Run: `.venv/bin/python examples/sandbox_demo.py`.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from toolgym.sandbox.cleanup import exit_on_sigterm
from toolgym.sandbox.docker import SandboxSpec
from toolgym.sandbox.pool import PoolConfig, SandboxPool

PROGRAM = "import sys\nn = int(sys.argv[1])\nprint(sum(i * i for i in range(n)))\n"


async def episode(pool: SandboxPool, i: int, timings: dict[str, list[float]]) -> bool:
    t0 = time.perf_counter()
    async with pool.sandbox() as sb:
        timings["acquire"].append(time.perf_counter() - t0)
        await sb.awrite_file("prog.py", PROGRAM)
        t1 = time.perf_counter()
        r = await sb.aexec(["python3", "prog.py", str(i)])
        timings["exec python"].append(time.perf_counter() - t1)
        t2 = time.perf_counter()
        await sb.aexec("true")
        timings["exec true"].append(time.perf_counter() - t2)
        runaway = await sb.aexec("while :; do :; done", timeout=0.2)
        return r.stdout == f"{sum(k * k for k in range(i))}\n" and runaway.timed_out


async def main() -> None:
    timings: dict[str, list[float]] = {"acquire": [], "exec python": [], "exec true": []}
    t0 = time.perf_counter()
    async with SandboxPool(SandboxSpec(), PoolConfig(size=8, max_size=8)) as pool:
        print(f"pool of 8 warm sandboxes started in {time.perf_counter() - t0:.1f} s")
        for i in range(16):  # one at a time: latencies without queueing
            await episode(pool, i, timings)
        t1 = time.perf_counter()
        ok = await asyncio.gather(*(episode(pool, i, {k: [] for k in timings}) for i in range(32)))
        print(f"32 episodes on 8 sandboxes in {time.perf_counter() - t1:.2f} s, "
              f"{sum(ok)}/32 correct (output right, runaway loop stopped by its timeout)")
    print("latencies, one episode at a time:")
    for name, samples in timings.items():
        print(f"  {name:<12} p50 {statistics.median(samples) * 1000:7.2f} ms   "
              f"max {max(samples) * 1000:7.2f} ms")
    if not all(ok):
        raise SystemExit("some episodes went wrong")


if __name__ == "__main__":
    exit_on_sigterm()
    asyncio.run(main())
