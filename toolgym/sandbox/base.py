"""The ``Sandbox`` protocol and the record an ``exec`` returns.

A sandbox is an isolated place to run an agent's commands. Backends
(:class:`~toolgym.sandbox.docker.DockerSandbox`,
:class:`~toolgym.sandbox.local.LocalSandbox`) implement the async methods;
:class:`SyncMixin` derives the blocking twins from them, so every backend has
the same method set and the sync path can never drift from the async one.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, Self, runtime_checkable

from toolgym._sync import run_sync

Command = str | Sequence[str]
"""A shell command line (run by ``/bin/sh -c``) or an argv list (run directly)."""
AGENT_UID = 1000
"""uid (and gid) of the agent's commands. A trusted command that runs the agent's code
starts it under this uid, e.g. ``subprocess.Popen(argv, user=AGENT_UID, group=AGENT_UID,
extra_groups=[])``; where it already is this uid (a bubblewrap sandbox) it just runs it."""
PLATFORM_DIR = "/run/toolgym-platform"
"""A writable dir of the platform's uid that the agent can neither list, read nor write
(in a Docker sandbox): for files such as hidden tests, written with ``trusted=True``.
Emptied on every reset."""


@dataclass(frozen=True)
class ExecResult:
    r"""What one command did. A failing command is a result, not an exception.

    Example:
        >>> r = ExecResult(exit_code=0, stdout="hi\n", stderr="")
        >>> r.ok
        True
    """

    exit_code: int
    """The command's exit status; ``-N`` when killed by signal N."""
    stdout: str
    stderr: str
    timed_out: bool = False
    """The wall-clock timeout ran out and the process group was killed."""
    truncated: bool = False
    """stdout or stderr exceeded the output cap; only the first bytes are kept."""
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the command exited 0 in time."""
        return self.exit_code == 0 and not self.timed_out

    @property
    def output(self) -> str:
        """stdout followed by stderr, the way a terminal would interleave them roughly."""
        return self.stdout + self.stderr


class State(enum.Enum):
    """Life cycle of a sandbox (httpx-style explicit state)."""

    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


@runtime_checkable
class Sandbox(Protocol):
    """What every sandbox backend offers. Async methods first; sync twins wrap them.

    ``trusted``: by default a command runs, and a file is written or read, as the
    agent (:data:`AGENT_UID`). ``trusted=True`` is for the platform's own processes
    and files (a verifier's harness, hidden tests): they run as the platform's uid,
    which the agent's processes cannot signal, ``ptrace``, or read the memory,
    environment or descriptors of. A trusted process may start a child under the
    agent's uid (it holds CAP_SETUID/CAP_SETGID and nothing else) and keeps the
    agent's limits (the same cgroup). Never pass text the agent wrote as a
    trusted command; hand secrets over on stdin or in a file under
    :data:`PLATFORM_DIR`, never in argv (``/proc/<pid>/cmdline`` is readable by
    every uid). Backends differ in strength: :class:`~toolgym.sandbox.docker.DockerSandbox`
    separates the uids as said; :class:`~toolgym.sandbox.local.LocalSandbox`
    (bubblewrap, one uid) accepts the keyword but runs trusted commands as the
    agent's uid, with no protection from the agent.
    """

    id: str
    tainted: bool
    """Something in the sandbox broke the platform's protocol: never reuse it."""

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
    ) -> ExecResult: ...

    async def awrite_file(
        self, path: str, data: bytes | str, *, mode: int = 0o644, trusted: bool = False
    ) -> None: ...

    async def aread_file(self, path: str, *, trusted: bool = False) -> bytes: ...

    async def areset(self) -> int:
        """Kill every process the agent started and empty the work dirs."""
        ...

    async def aping(self, *, timeout: float = 5.0) -> None:
        """Check that the sandbox answers (a pool's health check).

        Raises:
            SandboxError: it does not, within ``timeout`` seconds.
        """
        ...

    async def aclose(self) -> None: ...

    def exec(
        self,
        cmd: Command,
        *,
        timeout: float | None = None,
        stdin: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        output_bytes: int | None = None,
        trusted: bool = False,
    ) -> ExecResult: ...

    def write_file(
        self, path: str, data: bytes | str, *, mode: int = 0o644, trusted: bool = False
    ) -> None: ...

    def read_file(self, path: str, *, trusted: bool = False) -> bytes: ...

    def close(self) -> None: ...


class SyncMixin:
    """Blocking twins and context-manager support derived from the async methods.

    The sync methods run the coroutine on toolgym's bridge loop
    (:mod:`toolgym._sync`), never on a loop of their own.
    """

    def exec(
        self: Sandbox,
        cmd: Command,
        *,
        timeout: float | None = None,
        stdin: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        output_bytes: int | None = None,
        trusted: bool = False,
    ) -> ExecResult:
        """Run ``cmd`` and wait for it; see :meth:`aexec`."""
        return run_sync(
            self.aexec(
                cmd, timeout=timeout, stdin=stdin, env=env, workdir=workdir,
                output_bytes=output_bytes, trusted=trusted,
            )
        )

    def write_file(
        self: Sandbox, path: str, data: bytes | str, *, mode: int = 0o644, trusted: bool = False
    ) -> None:
        """Write ``data`` to ``path`` inside the sandbox (parents are created)."""
        run_sync(self.awrite_file(path, data, mode=mode, trusted=trusted))

    def read_file(self: Sandbox, path: str, *, trusted: bool = False) -> bytes:
        """Return the bytes of ``path`` inside the sandbox."""
        return run_sync(self.aread_file(path, trusted=trusted))

    def close(self: Sandbox) -> None:
        """Destroy the sandbox. A second call does nothing."""
        run_sync(self.aclose())

    def __enter__(self) -> Self:
        return self

    def __exit__(self: Sandbox, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self: Sandbox, *exc: object) -> None:
        await self.aclose()
