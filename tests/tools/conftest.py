"""Fixtures of the tool tests: a host-process fake sandbox and the real Docker sandbox,
each also as the :class:`~toolgym.tools.ToolContext` a tool call gets.

:class:`HostSandbox` runs commands as host subprocesses in a temporary dir. It
serves the unit tests of code *above* the sandbox (schemas, parsing,
dispatch); the built-in tools are tested against Docker (``docker`` marker).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import pytest

from toolgym.sandbox.base import Command, ExecResult, SyncMixin
from toolgym.sandbox.docker import DockerSandbox, SandboxSpec
from toolgym.tools import ToolContext


class HostSandbox(SyncMixin):
    """The Sandbox protocol over host subprocesses, in ``root`` (no isolation: tests only)."""

    def __init__(self, root: str) -> None:
        self.id = f"host-{os.path.basename(root)}"
        self.root = root
        self.calls: list[Command] = []

    async def aexec(
        self,
        cmd: Command,
        *,
        timeout: float | None = None,
        stdin: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        output_bytes: int | None = None,
        trusted: bool = False,
    ) -> ExecResult:
        self.calls.append(cmd)
        argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        cap = output_bytes or 65_536
        data = stdin.encode() if isinstance(stdin, str) else stdin
        start = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if data is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=workdir or self.root,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        timed_out = False
        try:
            out, err = await asyncio.wait_for(proc.communicate(data), timeout or 30.0)
        except TimeoutError:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = await proc.communicate()
        code = await proc.wait()
        return ExecResult(
            exit_code=code,
            stdout=out[:cap].decode("utf-8", "replace"),
            stderr=err[:cap].decode("utf-8", "replace"),
            timed_out=timed_out,
            truncated=len(out) > cap or len(err) > cap,
            duration_s=time.monotonic() - start,
        )

    async def awrite_file(
        self, path: str, data: bytes | str, *, mode: int = 0o644, trusted: bool = False
    ) -> None:
        target = Path(self.root, path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode() if isinstance(data, str) else data)

    async def aread_file(self, path: str, *, trusted: bool = False) -> bytes:
        return Path(self.root, path).read_bytes()

    async def aclose(self) -> None:
        pass


@pytest.fixture
def host_sandbox() -> Iterator[HostSandbox]:
    """A fake sandbox in a short temp dir (Unix socket paths must stay under 108 bytes)."""
    root = tempfile.mkdtemp(prefix="tg-", dir="/tmp")
    try:
        yield HostSandbox(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def docker_sandbox(python_image: str) -> AsyncIterator[object]:
    """A real Docker sandbox of the python image (built by the shared fixture if missing)."""
    sandbox = await DockerSandbox.acreate(SandboxSpec(image=python_image))
    async with sandbox:
        yield sandbox


@pytest.fixture
def host_context(host_sandbox: HostSandbox) -> ToolContext:
    """The fake sandbox as a tool call's context (no task)."""
    return ToolContext(host_sandbox)


@pytest.fixture
def docker_context(docker_sandbox: DockerSandbox) -> ToolContext:
    """The Docker sandbox as a tool call's context (no task)."""
    return ToolContext(docker_sandbox)
