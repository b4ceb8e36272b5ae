"""Measurements behind ``toolgym sandbox bench`` and ``benchmarks/sandbox.py``.

Every figure is measured in the same process against the same daemon, so the
ratios (toolgym exec vs docker SDK ``exec_run``) compare like with like.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from toolgym.sandbox.docker import AGENT_USER, DockerSandbox
from toolgym.sandbox.pool import PoolConfig, SandboxPool
from toolgym.sandbox.spec import SandboxSpec

PY_SNIPPET = ["python3", "-c", "print(sum(range(100)))"]


@dataclass(frozen=True)
class Timing:
    """p50/p95 of one measured operation, in milliseconds."""

    name: str
    p50_ms: float
    p95_ms: float
    n: int


def _summarise(name: str, seconds: list[float]) -> Timing:
    ms = sorted(s * 1000 for s in seconds)
    return Timing(name, statistics.median(ms), ms[min(len(ms) - 1, int(0.95 * len(ms)))], len(ms))


async def _time(name: str, op: Callable[[], Awaitable[object]], n: int) -> Timing:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await op()
        samples.append(time.perf_counter() - start)
    return _summarise(name, samples)


async def exec_latencies(spec: SandboxSpec, n: int = 200, n_baseline: int = 40) -> list[Timing]:
    """docker SDK ``exec_run`` (baseline) vs toolgym ``aexec`` for ``true`` and a python snippet."""
    async with await DockerSandbox.acreate(spec) as sb:
        def exec_run(cmd: list[str]) -> Callable[[], Awaitable[object]]:
            return lambda: asyncio.to_thread(sb.container.exec_run, cmd, user=AGENT_USER)

        await sb.aexec("true")  # warm both paths
        await exec_run(["true"])()
        timings = [
            await _time("docker exec_run: true", exec_run(["true"]), n_baseline),
            await _time("toolgym exec: true", lambda: sb.aexec("true"), n),
            await _time("docker exec_run: python snippet", exec_run(PY_SNIPPET), n_baseline),
            await _time("toolgym exec: python snippet", lambda: sb.aexec(PY_SNIPPET), n),
            await _time("toolgym exec: true, trusted (no uid switch)",
                        lambda: sb.aexec("true", trusted=True), n),
        ]
        # The agent may kill its spawner (the parent of its commands); until the next
        # reset its commands fork from the supervisor, as all did before the spawner.
        await sb.aexec("kill -9 $PPID")
        timings.append(await _time("toolgym exec: true, forked by the supervisor",
                                   lambda: sb.aexec("true"), n))
        await sb.areset()
        return timings


async def start_latencies(spec: SandboxSpec, n: int = 10) -> list[Timing]:
    """Cold container start (create + supervisor) vs warm ``acquire`` from a pool."""

    async def cold() -> None:
        sb = await DockerSandbox.acreate(spec)
        await sb.aclose()

    cold_t = await _time("cold start (container + supervisor)", cold, n)
    async with SandboxPool(spec, PoolConfig(size=2, max_size=4, reap_orphans=False)) as pool:
        samples = []
        for _ in range(n * 5):
            start = time.perf_counter()
            sb = await pool.acquire()
            samples.append(time.perf_counter() - start)
            await pool.release(sb)
    return [cold_t, _summarise("warm pool acquire", samples)]


@dataclass(frozen=True)
class Concurrency:
    """How many sandboxes ran at once, and how it went."""

    sandboxes: int
    errors: int
    start_s: float
    exec_wall_s: float


async def concurrency(spec: SandboxSpec, n: int = 64) -> Concurrency:
    """Start ``n`` sandboxes at once and run a python snippet in each, all concurrently."""
    start = time.perf_counter()
    results = await asyncio.gather(*(DockerSandbox.acreate(spec) for _ in range(n)),
                                   return_exceptions=True)
    started = [r for r in results if isinstance(r, DockerSandbox)]
    start_s = time.perf_counter() - start
    try:
        t0 = time.perf_counter()
        outs = await asyncio.gather(*(sb.aexec(PY_SNIPPET) for sb in started),
                                    return_exceptions=True)
        wall = time.perf_counter() - t0
        bad = sum(1 for o in outs if isinstance(o, BaseException) or o.stdout != "4950\n")
    finally:
        await asyncio.gather(*(sb.aclose() for sb in started))
    return Concurrency(n, (n - len(started)) + bad, start_s, wall)


def speedups(timings: list[Timing]) -> list[str]:
    """One line per command timed both ways: exec_run p50 over toolgym's p50."""
    by_name = {t.name: t for t in timings}
    lines = []
    for what, base_name in (("true", "true"), ("python snippet", "python snippet"),
                            ("true, trusted (no uid switch)", "true"),
                            ("true, forked by the supervisor", "true")):
        base, ours = by_name.get(f"docker exec_run: {base_name}"), by_name.get(
            f"toolgym exec: {what}")
        if base and ours:
            lines.append(f"exec p50 speed-up ({what}): {base.p50_ms / ours.p50_ms:.1f}x")
    return lines


def format_table(timings: list[Timing]) -> str:
    """A markdown table of timings (p50, p95, sample count)."""
    rows = ["| operation | p50 ms | p95 ms | n |", "|---|---:|---:|---:|"]
    rows += [f"| {t.name} | {t.p50_ms:.2f} | {t.p95_ms:.2f} | {t.n} |" for t in timings]
    return "\n".join(rows)


async def report(spec: SandboxSpec, n: int = 200, concurrent: int = 64) -> list[str]:
    """Everything ``toolgym sandbox bench`` and ``benchmarks/sandbox.py`` print, as lines:
    the timing table, the speed-ups, then ``concurrent`` sandboxes at once (0 skips it)."""
    timings = await exec_latencies(spec, n=n, n_baseline=max(10, n // 5))
    timings += await start_latencies(spec)
    lines = [format_table(timings), *speedups(timings)]
    if concurrent:
        conc = await concurrency(spec, concurrent)
        lines.append(f"{conc.sandboxes} sandboxes at once: {conc.errors} errors, started in "
                     f"{conc.start_s:.1f} s, one exec in each in {conc.exec_wall_s:.2f} s")
    return lines
