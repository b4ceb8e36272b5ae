"""Docker containers as sandboxes, driven through a persistent exec channel.

Each :class:`DockerSandbox` is one container started with tight limits (no
network, no capabilities, read-only root, memory without swap, pids cap). Its
main process is ``sleep infinity`` run as ``nobody`` under docker's init; the
agent's commands run as uid 1000 under a :mod:`~toolgym.sandbox.supervisor`
started once with ``docker exec``, so each command costs a request over a
socket instead of a new ``docker exec`` (~1 ms instead of ~80 ms).

Because the agent's processes share the supervisor's uid, an agent can kill
the supervisor (``kill -9 -1``). The container survives (its main process is
another user's); the next call finds the channel closed, counts it, and starts
a new supervisor. Should that fail, the call runs through a plain
``docker exec`` (counted as a fallback), and only if that fails too is the
sandbox reported as crashed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import docker.errors

from toolgym.errors import ImageNotFound, SandboxCrashed
from toolgym.sandbox import cleanup, owner
from toolgym.sandbox.base import Command, ExecResult, State, SyncMixin
from toolgym.sandbox.channel import (
    SUPERVISOR_SOURCE,
    ChannelLost,
    SupervisorChannel,
    decode_exec_reply,
)
from toolgym.sandbox.docker_client import docker_client
from toolgym.sandbox.limits import DEFAULT_LIMITS, Limits

AGENT_USER = "1000:1000"
"""uid:gid the agent's commands (and the supervisor) run as."""
IDLE_USER = "65534:65534"
"""uid:gid of the container's main process, out of the agent's reach."""
_DOCKER_FRAME = struct.Struct(">BxxxL")


@dataclass(frozen=True)
class SandboxSpec:
    """How to start a sandbox. Frozen, so pools can key on it.

    Example:
        >>> SandboxSpec(image="toolgym/python:latest", network=False).workdir
        '/work'
    """

    image: str = "toolgym/python:latest"
    limits: Limits = DEFAULT_LIMITS
    network: bool = False
    """Off by default: a sandbox reaches nothing unless a task needs it."""
    workdir: str = "/work"
    """Writable tmpfs, the agent's home; everything else is read-only."""
    env: Mapping[str, str] = field(default_factory=dict)
    wipe: tuple[str, ...] = ("/work", "/tmp")
    """Directories emptied when a pooled sandbox is made clean again."""

    def base_env(self) -> dict[str, str]:
        """Environment the agent's commands start with."""
        return {
            "HOME": self.workdir,
            "LANG": "C.UTF-8",
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PYTHONDONTWRITEBYTECODE": "1",
            "TMPDIR": "/tmp",
            **self.env,
        }


def container_options(spec: SandboxSpec, labels: Mapping[str, str]) -> dict[str, Any]:
    """The ``containers.run`` keyword arguments that enforce ``spec``'s isolation."""
    lim = spec.limits
    mem = f"{lim.memory_mb}m"
    return {
        "command": ["sleep", "infinity"],
        "init": True,
        "user": IDLE_USER,
        "working_dir": spec.workdir,
        "labels": dict(labels),
        "network_mode": "bridge" if spec.network else "none",
        "mem_limit": mem,
        "memswap_limit": mem,
        "nano_cpus": int(lim.cpus * 1e9),
        "pids_limit": lim.pids,
        "read_only": True,
        "tmpfs": {
            spec.workdir: f"rw,size={lim.workdir_mb}m,mode=0755,uid=1000,gid=1000",
            "/tmp": "rw,size=64m,mode=1777",
        },
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "ulimits": [
            docker.types.Ulimit(name="nofile", soft=lim.open_files, hard=lim.open_files),
            docker.types.Ulimit(
                name="fsize", soft=lim.file_size_mb << 20, hard=lim.file_size_mb << 20
            ),
        ],
        "environment": spec.base_env(),
        "hostname": "sandbox",
    }


class _ExecSocket:
    """The hijacked socket of a ``docker exec`` with stdin attached (a :class:`Transport`).

    Docker multiplexes a non-TTY exec's stdout and stderr in 8-byte-headed
    frames; stdout carries the protocol, stderr is kept for diagnosis.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.stderr_tail = b""

    async def read(self) -> bytes:
        while True:
            try:
                header = await self._reader.readexactly(_DOCKER_FRAME.size)
                stream, size = _DOCKER_FRAME.unpack(header)
                payload = await self._reader.readexactly(size)
            except asyncio.IncompleteReadError:
                return b""
            if stream == 2:
                self.stderr_tail = (self.stderr_tail + payload)[-4096:]
            elif payload:
                return payload

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    def close(self) -> None:
        self._writer.close()


class DockerSandbox(SyncMixin):
    """One Docker container with a persistent exec channel.

    Create with :meth:`acreate` (or :meth:`create` from sync code); close with
    :meth:`aclose`, or use it as an (async) context manager.

    Example:
        >>> with DockerSandbox.create(SandboxSpec()) as sb:  # doctest: +SKIP
        ...     sb.exec("echo hi").stdout
        'hi\\n'
    """

    def __init__(self, container: Any, spec: SandboxSpec) -> None:
        self.container = container
        self.id: str = container.id
        self.spec = spec
        self.limits = spec.limits
        self.events: Counter[str] = Counter()
        """Counted infrastructure events: channel_restarts, fallback_execs, …"""
        self.state = State.OPENED
        self._channel: SupervisorChannel | None = None
        self._channel_lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    # ---------------------------------------------------------------- life cycle
    @classmethod
    async def acreate(
        cls, spec: SandboxSpec | None = None, *, labels: Mapping[str, str] | None = None
    ) -> DockerSandbox:
        """Start a container for ``spec`` and its supervisor.

        Raises:
            ImageNotFound: the image is not built.
            SandboxUnavailable: no Docker daemon answers.
            SandboxCrashed: the container started but its supervisor did not.
        """
        spec = spec or SandboxSpec()
        client = docker_client()
        all_labels = {**owner.labels(), "toolgym.image": spec.image, **(labels or {})}
        cleanup.register_exit_hook()
        options = container_options(spec, all_labels)

        def start() -> Any:  # create + start: unlike run(), never tries to pull
            container = client.containers.create(spec.image, **options)
            try:
                container.start()
            except BaseException:
                _remove(container)
                raise
            return container

        starting = asyncio.ensure_future(asyncio.to_thread(start))
        try:
            container = await asyncio.shield(starting)
        except docker.errors.ImageNotFound as exc:
            raise ImageNotFound(spec.image) from exc
        except asyncio.CancelledError:
            # The thread goes on and will start the container: remove it when it does.
            starting.add_done_callback(_remove_when_started)
            raise
        sandbox = cls(container, spec)
        try:
            await sandbox._ensure_channel()
        except BaseException:
            await sandbox.aclose()
            raise
        return sandbox

    @classmethod
    def create(
        cls, spec: SandboxSpec | None = None, *, labels: Mapping[str, str] | None = None
    ) -> DockerSandbox:
        """Blocking twin of :meth:`acreate`."""
        from toolgym._sync import run_sync

        return run_sync(cls.acreate(spec, labels=labels))

    async def aclose(self) -> None:
        """Remove the container. Safe to call twice, and safe under cancellation."""
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        if self._channel is not None:
            self._channel.close()
        # Shielded: a cancelled caller must not leave the container behind.
        await asyncio.shield(asyncio.to_thread(_remove, self.container))

    # ------------------------------------------------------------------- channel
    async def _open_channel(self) -> SupervisorChannel:
        api = docker_client().api

        def start() -> socket.socket:
            exec_id = api.exec_create(
                self.id,
                ["python3", "-u", "-c", SUPERVISOR_SOURCE],
                stdin=True,
                stdout=True,
                stderr=True,
                user=AGENT_USER,
                workdir=self.spec.workdir,
            )["Id"]
            raw = api.exec_start(exec_id, socket=True)
            sock = getattr(raw, "_sock", raw)
            dup = sock.dup()  # ours alone: docker-py's response may close the original
            raw.close()
            sock.close()
            return dup

        try:
            sock = await asyncio.to_thread(start)
        except docker.errors.APIError as exc:
            raise ChannelLost(f"cannot start supervisor: {exc}") from exc
        reader, writer = await asyncio.open_connection(sock=sock)
        channel = SupervisorChannel(_ExecSocket(reader, writer))
        try:
            await channel.start(timeout=15.0)
        except BaseException:
            channel.close()
            raise
        return channel

    async def _ensure_channel(self) -> SupervisorChannel:
        """Return a live channel on the running loop, (re)starting the supervisor if needed."""
        channel = self._channel
        if channel is not None and channel.usable:
            return channel
        loop = asyncio.get_running_loop()
        if self._channel_lock is None or self._lock_loop is not loop:
            self._channel_lock, self._lock_loop = asyncio.Lock(), loop
        async with self._channel_lock:
            if self._channel is not None and self._channel.usable:
                return self._channel
            if self._channel is not None:
                self._channel.close()
                self.events["channel_restarts"] += 1
            self._channel = await self._open_channel()
            return self._channel

    def _check_open(self) -> None:
        if self.state is not State.OPENED:
            raise SandboxCrashed(self.id, "sandbox is closed")

    # ----------------------------------------------------------------- commands
    async def aexec(
        self,
        cmd: Command,
        *,
        timeout: float | None = None,
        stdin: bytes | str | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        output_bytes: int | None = None,
    ) -> ExecResult:
        """Run ``cmd`` as the sandbox user; a failing command is a result, not an error.

        Args:
            cmd: a shell command line (``/bin/sh -c``) or an argv list.
            timeout: wall-clock seconds (default ``limits.timeout_s``); when it
                runs out the command's whole process group is killed and the
                result has ``timed_out=True``. The sandbox stays usable.
            stdin: bytes fed to the command's stdin (default: none, EOF).
            env: variables added to the sandbox's environment.
            workdir: working directory (default: the spec's work dir).
            output_bytes: bytes kept of each of stdout/stderr (default
                ``limits.output_bytes``); the rest is dropped, ``truncated=True``.

        Raises:
            SandboxCrashed: the container is gone or cannot run commands at all.
        """
        self._check_open()
        timeout = self.limits.timeout_s if timeout is None else timeout
        output_bytes = self.limits.output_bytes if output_bytes is None else output_bytes
        try:
            channel = await self._ensure_channel()
        except ChannelLost:
            self.events["fallback_execs"] += 1
            return await self._fallback_exec(cmd, timeout=timeout, stdin=stdin, env=env,
                                             workdir=workdir, output_bytes=output_bytes)
        try:
            return await channel.exec(cmd, timeout=timeout, stdin=stdin, env=env,
                                      workdir=workdir or self.spec.workdir,
                                      output_bytes=output_bytes)
        except ChannelLost:
            # The command (or something) killed the supervisor mid-call. Re-running
            # it could repeat side effects, so report it as a failed command.
            self.events["channel_lost"] += 1
            await self._raise_if_dead()
            return ExecResult(exit_code=-9, stdout="", stderr=(
                "[toolgym] the command killed the sandbox's command runner; "
                "it has been restarted, but the command's output is lost\n"))

    async def _fallback_exec(self, cmd: Command, *, timeout: float, stdin: bytes | str | None,
                             env: Mapping[str, str] | None, workdir: str | None,
                             output_bytes: int) -> ExecResult:
        """Serve one request with a one-shot ``docker exec`` of the supervisor code."""
        await self._raise_if_dead()
        api = docker_client().api
        request = {"id": 0, "op": "exec", "cmd": cmd if isinstance(cmd, str) else list(cmd),
                   "timeout": timeout, "output_bytes": output_bytes,
                   "stdin": None if stdin is None else base64.b64encode(
                       stdin.encode() if isinstance(stdin, str) else stdin).decode(),
                   "env": dict(env or {}), "cwd": workdir or self.spec.workdir}
        script = (SUPERVISOR_SOURCE.split('if __name__ == "__main__":')[0]
                  + "import sys,json;sys.stdout.write(json.dumps(run_command(json.loads(sys.argv[1]))))")

        def run() -> bytes:
            exec_id = api.exec_create(self.id, ["python3", "-c", script, json.dumps(request)],
                                      user=AGENT_USER, workdir=self.spec.workdir)["Id"]
            return api.exec_start(exec_id)

        try:
            out = await asyncio.wait_for(asyncio.to_thread(run), timeout + 30)
            return decode_exec_reply(json.loads(out))
        except Exception as exc:
            raise SandboxCrashed(self.id, f"fallback docker exec failed: {exc!r}") from exc

    async def _raise_if_dead(self) -> None:
        try:
            await asyncio.to_thread(self.container.reload)
        except docker.errors.NotFound as exc:
            raise SandboxCrashed(self.id, "container no longer exists") from exc
        if self.container.status != "running":
            raise SandboxCrashed(self.id, f"container is {self.container.status}")

    async def _request(self, op: str, *, reply_timeout: float = 30.0, **fields: Any) -> dict[str, Any]:
        """A non-exec supervisor request, retried once on a fresh channel."""
        self._check_open()
        for attempt in (1, 2):
            try:
                channel = await self._ensure_channel()
                return await channel.request(op, reply_timeout=reply_timeout, **fields)
            except ChannelLost:
                if attempt == 2:
                    await self._raise_if_dead()
                    raise SandboxCrashed(self.id, f"supervisor lost twice during {op}") from None
        raise AssertionError("unreachable")

    async def awrite_file(self, path: str, data: bytes | str, *, mode: int = 0o644) -> None:
        """Write ``data`` to ``path`` (relative paths are under the work dir).

        Raises:
            OSError: the path is not writable (read-only root, no space).
        """
        raw = data.encode() if isinstance(data, str) else data
        try:
            await self._request("write_file", path=self._abs(path), mode=mode,
                                data=base64.b64encode(raw).decode())
        except RuntimeError as exc:
            raise OSError(str(exc)) from None

    async def aread_file(self, path: str, *, max_bytes: int = 64 << 20) -> bytes:
        """Return the bytes of ``path`` (relative paths are under the work dir).

        Raises:
            FileNotFoundError: the file does not exist or cannot be read.
        """
        try:
            reply = await self._request("read_file", path=self._abs(path), max_bytes=max_bytes)
        except RuntimeError as exc:
            raise FileNotFoundError(str(exc)) from None
        return base64.b64decode(reply["data"])

    async def areset(self) -> int:
        """Kill every process of the sandbox user and empty the work dirs.

        Returns:
            how many processes were killed.
        """
        reply = await self._request("reset", wipe=list(self.spec.wipe))
        return int(reply["killed"])

    def _abs(self, path: str) -> str:
        return path if path.startswith("/") else f"{self.spec.workdir}/{path}"


def _remove(container: Any) -> None:
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if "already in progress" not in str(exc):
            raise


def _remove_when_started(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is None:
        asyncio.get_running_loop().run_in_executor(None, _remove, task.result())
