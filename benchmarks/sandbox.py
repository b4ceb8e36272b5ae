"""Sandbox latency benchmark: docker SDK exec_run vs toolgym's persistent channel.

Run: `.venv/bin/python benchmarks/sandbox.py [--image toolgym/python:latest] [--concurrent 64]`.
Prints a markdown table (the README's Performance section copies it) and the
ratios against the exec_run baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio

from toolgym.sandbox.bench import (
    concurrency,
    exec_latencies,
    format_table,
    speedups,
    start_latencies,
)
from toolgym.sandbox.docker import SandboxSpec


async def main(image: str, n_concurrent: int) -> None:
    spec = SandboxSpec(image=image)
    execs = await exec_latencies(spec)
    starts = await start_latencies(spec)
    print(format_table(execs + starts))
    print("\n".join(speedups(execs + starts)))
    conc = await concurrency(spec, n_concurrent)
    print(f"concurrent sandboxes: {conc.sandboxes}, errors: {conc.errors}, "
          f"start all: {conc.start_s:.1f} s, one exec in each at once: {conc.exec_wall_s:.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="toolgym/python:latest")
    parser.add_argument("--concurrent", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(main(args.image, args.concurrent))
