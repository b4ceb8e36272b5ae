"""Before/after for the exec hot path: two supervisors, one process, alternating rounds.

Run: `.venv/bin/python benchmarks/supervisor_ab.py --base REV [--rounds 6] [--n 100]`.
Starts one sandbox whose supervisor is `toolgym/sandbox/supervisor.py` at git
revision REV and two with the working tree's, one of them kept on Docker's exec
stream (`direct=False`, see `toolgym/sandbox/host_socket.py`), then times `exec
true` (the agent's path) and, where all know it, a trusted `true` in
alternating rounds, so load drifts hit all alike. A base from before the
direct socket cannot attach to it and stays on the exec stream. A base from
before the supervisor took its JSON configuration (91cc758) is started without
it: it runs commands as root, i.e. the path before the agent had a uid of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import time
from pathlib import Path

import toolgym.sandbox.docker as docker_backend
from toolgym.sandbox.docker import DockerSandbox
from toolgym.sandbox.spec import SandboxSpec

SOURCE = "toolgym/sandbox/supervisor.py"


async def _start(source: str, image: str, direct: bool = True) -> DockerSandbox:
    """A sandbox whose channel runs ``source`` (the backend reads both names at start)."""
    config, current = docker_backend.supervisor_config, docker_backend.SUPERVISOR_SOURCE
    docker_backend.SUPERVISOR_SOURCE = source
    if "def configure(" not in source:  # its argv[1] was a dict of rlimits
        docker_backend.supervisor_config = lambda *args, **kwargs: "{}"  # type: ignore[assignment]
    try:
        return await DockerSandbox.acreate(SandboxSpec(image=image), direct=direct)
    finally:
        docker_backend.supervisor_config, docker_backend.SUPERVISOR_SOURCE = config, current


async def _samples(sandbox: DockerSandbox, n: int, **kwargs: bool) -> tuple[list[float], int]:
    """Seconds per ``exec true``, ``n`` of them after 10 unmeasured, and how many did not
    exit 0 (a supervisor that loses commands is slower than its p50 says)."""
    for _ in range(10):
        await sandbox.aexec("true", **kwargs)
    samples, failed = [], 0
    for _ in range(n):
        start = time.perf_counter()
        result = await sandbox.aexec("true", **kwargs)
        samples.append(time.perf_counter() - start)
        failed += result.exit_code != 0
    return samples, failed


async def main(base: str, rounds: int, n: int, image: str) -> None:
    old = subprocess.run(["git", "show", f"{base}:{SOURCE}"], check=True, capture_output=True,
                         text=True).stdout
    new = Path(SOURCE).read_text(encoding="utf-8")
    sandboxes = {base: await _start(old, image),
                 "working tree, exec stream": await _start(new, image, direct=False),
                 "working tree": await _start(new, image)}
    rows: dict[tuple[str, str], list[float]] = {}
    failures: dict[tuple[str, str], int] = {}
    try:
        for _ in range(rounds):
            for name, sandbox in sandboxes.items():
                for label, trusted in (("true", False), ("true, trusted", True)):
                    samples, failed = await _samples(sandbox, n, trusted=trusted)
                    rows.setdefault((name, label), []).extend(samples)
                    failures[name, label] = failures.get((name, label), 0) + failed
    finally:
        for sandbox in sandboxes.values():
            await sandbox.aclose()
    print("| supervisor | exec | p50 ms | n | exit status not 0 |\n|---|---|---:|---:|---:|")
    for (name, label), samples in rows.items():
        print(f"| {name} | `{label}` | {statistics.median(samples) * 1e3:.2f} | {len(samples)} "
              f"| {failures[name, label]} |")
    before = statistics.median(rows[(base, "true")])
    for name in list(sandboxes)[1:]:
        after = statistics.median(rows[(name, "true")])
        print(f"\nagent's `true`: {name} / {base} = {after / before:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git revision of the 'before' supervisor")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--n", type=int, default=100, help="execs per path and round")
    parser.add_argument("--image", default="toolgym/python:latest")
    args = parser.parse_args()
    asyncio.run(main(args.base, args.rounds, args.n, args.image))
