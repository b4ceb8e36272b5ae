"""Sandboxes without Docker: bubblewrap namespaces on the host (weaker isolation).

For development on machines without a Docker daemon. Each :class:`LocalSandbox`
is a ``bwrap`` process tree: new user, pid, network, ipc and uts namespaces, a
read-only view of the host's ``/usr`` and ``/etc``, private tmpfs ``/work``
and ``/tmp``, and the same supervisor as Docker sandboxes. Limits are rlimits
(address space, file size, open files) applied by the supervisor, not
cgroups: there is no CPU quota and no hard cap on processes, and the host
kernel and its ``/usr`` are shared. There is one uid: ``trusted`` commands and
files are accepted but run as the agent's uid, so the agent can reach them
(and the supervisor) as a Docker sandbox's agent cannot. It is **weaker than
Docker**.

:class:`LocalBackend` makes it selectable as ``sandbox.backend: local``: a
spec's limits, network and environment apply; its image does not (the host's
``/usr`` stands in for it, so an env whose tools need files of its image, such
as SQL-v0's databases, needs Docker), and a spec with a service or another work
dir is refused.

Without bubblewrap it refuses to run unless ``allow_unisolated=True`` is passed
explicitly, in which case commands run as plain host processes in a temporary
directory: that is no sandbox at all and is for trusted code only.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from typing import Any

from toolgym.errors import ConfigError, SandboxCrashed, SandboxUnavailable
from toolgym.sandbox.base import PLATFORM_DIR, ExecResult
from toolgym.sandbox.budget import MemoryBudget, host_budget, machine_memory_mb
from toolgym.sandbox.channel import (
    SUPERVISOR_SOURCE,
    ChannelLost,
    SupervisorChannel,
    python_argv,
    supervisor_config,
)
from toolgym.sandbox.limits import DEFAULT_LIMITS, Limits
from toolgym.sandbox.spec import SandboxSpec
from toolgym.sandbox.supervised import SupervisedSandbox

PYTHON = "/usr/bin/python3"


class _ProcessPipes:
    """A supervisor's stdin/stdout pipes (a :class:`~toolgym.sandbox.channel.Transport`)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def read(self) -> bytes:
        assert self.proc.stdout is not None
        return await self.proc.stdout.read(65536)

    async def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


def bwrap_argv(workdir: str, network: bool, env: Mapping[str, str] | None = None) -> list[str]:
    """The bubblewrap command line that isolates one sandbox (``env`` added to its
    environment)."""
    argv = [
        "bwrap", "--unshare-all", "--die-with-parent", "--new-session",
        "--uid", "1000", "--gid", "1000",
        "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc",
        "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
        "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
        "--proc", "/proc", "--dev", "/dev",
        "--tmpfs", "/tmp", "--tmpfs", workdir, "--tmpfs", PLATFORM_DIR, "--chdir", "/usr",
        "--clearenv", "--setenv", "HOME", workdir, "--setenv", "LANG", "C.UTF-8",
        "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
    ]
    for key, value in (env or {}).items():
        argv += ["--setenv", key, value]
    if network:
        argv.append("--share-net")
    return argv


def rlimits(limits: Limits) -> dict[str, int]:
    """The rlimits the supervisor applies to itself and so to every command."""
    return {
        "RLIMIT_AS": limits.memory_mb << 20,
        "RLIMIT_FSIZE": limits.file_size_mb << 20,
        "RLIMIT_NOFILE": limits.open_files,
    }


class LocalSandbox(SupervisedSandbox):
    """A bubblewrap sandbox on the host; same API as :class:`DockerSandbox`.

    Example:
        >>> async def main():  # doctest: +SKIP
        ...     async with await LocalSandbox.acreate() as sb:
        ...         return (await sb.aexec("id -u")).stdout
    """

    def __init__(self, limits: Limits, network: bool, allow_unisolated: bool,
                 env: Mapping[str, str] | None = None) -> None:
        self.isolated = shutil.which("bwrap") is not None
        if not self.isolated and not allow_unisolated:
            raise SandboxUnavailable(
                "bubblewrap (bwrap) is not installed, so LocalSandbox cannot isolate commands. "
                "Install it (`apt-get install bubblewrap`), use Docker, or pass "
                "allow_unisolated=True to run trusted code as plain host processes."
            )
        self._hostdir = None if self.isolated else tempfile.mkdtemp(prefix="toolgym-local-")
        workdir = "/work" if self.isolated else self._hostdir
        assert workdir is not None
        wipe = ("/work", "/tmp") if self.isolated else (workdir,)
        # Without bubblewrap there is no PLATFORM_DIR: reset must not touch a host path.
        self.platform_dir = PLATFORM_DIR if self.isolated else None
        super().__init__(f"local-{uuid.uuid4().hex[:12]}", limits, workdir, wipe)
        self.sweep_uid = self.isolated
        self.network = network
        self.env = dict(env or {})
        self._proc: asyncio.subprocess.Process | None = None

    @classmethod
    async def acreate(
        cls, limits: Limits = DEFAULT_LIMITS, *, network: bool = False,
        allow_unisolated: bool = False, env: Mapping[str, str] | None = None,
    ) -> LocalSandbox:
        """Start the sandbox and its supervisor (``env``: variables for its commands).

        Raises:
            SandboxUnavailable: no bubblewrap and ``allow_unisolated`` is False,
                or bubblewrap cannot create namespaces here.
        """
        sandbox = cls(limits, network, allow_unisolated, env)
        try:
            await sandbox._ensure_channel()
        except ChannelLost as exc:
            await sandbox.aclose()
            raise SandboxUnavailable(f"bubblewrap could not start a sandbox: {exc}") from exc
        return sandbox

    def _argv(self, source: str, *args: str) -> list[str]:
        prefix = bwrap_argv(self.workdir, self.network, self.env) if self.isolated else []
        return [*prefix, *python_argv(PYTHON, source, *args)]

    async def _open_channel(self) -> SupervisorChannel:
        if self._proc is not None:  # the tmpfs died with the first supervisor
            raise ChannelLost("the sandbox's supervisor died; its files are gone")
        proc = await asyncio.create_subprocess_exec(
            *self._argv(SUPERVISOR_SOURCE, supervisor_config(None, rlimits(self.limits))),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, cwd=self._hostdir,
        )
        self._proc = proc
        channel = SupervisorChannel(_ProcessPipes(proc))
        try:
            await channel.start(timeout=15.0)
        except BaseException:
            channel.close()
            raise
        return channel

    async def _raise_if_dead(self) -> None:
        if self.state.name == "CLOSED":
            raise SandboxCrashed(self.id, "sandbox is closed")

    async def _fallback_exec(self, request: dict[str, Any]) -> ExecResult:
        # Without the long-lived supervisor the sandbox's tmpfs is gone with it:
        # a local sandbox cannot serve a fallback, it must be recreated.
        raise SandboxCrashed(self.id, "local sandbox lost its supervisor; create a new one")

    async def _destroy(self) -> None:
        if self._channel is not None:
            self._channel.close()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.kill()
        if proc is not None:
            await proc.wait()
        if self._hostdir is not None:
            shutil.rmtree(self._hostdir, ignore_errors=True)


class LocalBackend:
    """Starts :class:`LocalSandbox` processes on this machine (``sandbox.backend: local``).

    Example:
        >>> LocalBackend().name
        'local'
    """

    name = "local"

    async def acreate(
        self, spec: SandboxSpec, *, labels: Mapping[str, str] | None = None
    ) -> LocalSandbox:
        """A bubblewrap sandbox with ``spec``'s limits, network and environment.

        Raises:
            ConfigError: ``spec`` has a service or a work dir other than ``/work``.
            SandboxUnavailable: bubblewrap is missing or cannot create namespaces.
        """
        if spec.service:
            raise ConfigError(f"the local backend cannot run a sandbox service "
                              f"({' '.join(spec.service)}); use sandbox.backend: docker")
        if spec.workdir != "/work":
            raise ConfigError(f"the local backend's work dir is /work, not {spec.workdir}")
        return await LocalSandbox.acreate(spec.limits, network=spec.network, env=spec.env)

    def reap_orphans(self) -> int:
        """None to reap: bubblewrap kills a sandbox with its owner (``--die-with-parent``)."""
        return 0

    def memory_budget(self) -> MemoryBudget:
        """This machine's process-wide budget."""
        return host_budget("machine", machine_memory_mb)

    def host_memory_mb(self) -> int:
        """This machine's memory."""
        return machine_memory_mb()
