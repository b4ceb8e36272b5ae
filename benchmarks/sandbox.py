"""Sandbox latency benchmark: docker SDK exec_run vs toolgym's persistent channel.

Run: `.venv/bin/python benchmarks/sandbox.py [--image toolgym/python:latest] [--concurrent 64]`.
Prints a markdown table (the README's Performance section copies it), the
ratios against the exec_run baseline measured in the same run, and how many
sandboxes ran at once. `toolgym sandbox bench` prints the same.
"""

from __future__ import annotations

import argparse
import asyncio

from toolgym.sandbox.bench import report
from toolgym.sandbox.spec import SandboxSpec

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="toolgym/python:latest")
    parser.add_argument("--concurrent", type=int, default=64)
    args = parser.parse_args()
    print("\n".join(asyncio.run(report(SandboxSpec(image=args.image),
                                       concurrent=args.concurrent))))
