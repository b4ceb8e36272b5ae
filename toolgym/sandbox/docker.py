"""Docker containers as sandboxes, driven through a persistent exec channel.

Each :class:`DockerSandbox` is one container started with tight limits (no
network, read-only root, memory without swap, pids cap, no-new-privileges).
Its main process is ``sleep infinity`` run as ``nobody`` under docker's init;
the agent's commands run as uid 1000 under a
:mod:`~toolgym.sandbox.supervisor` started once with ``docker exec``, so each
command costs a request over a socket instead of a new ``docker exec`` (~2 ms
instead of ~70 ms). Where the daemon is on this machine the requests then move
off the exec stream onto a unix socket mounted into the container
(:mod:`~toolgym.sandbox.host_socket`), which saves the daemon's two hops.

Two uids, so the agent cannot reach the supervisor. The supervisor (and
``trusted`` commands) run as the container's root, whose capabilities are
bounded to CAP_SETUID, CAP_SETGID and CAP_KILL: enough to start commands as
uid 1000 and to kill them, not to bypass a file permission. That needs the
container's user to be root: Docker gives a ``docker exec`` as root no
capabilities in a container whose user is not root when no-new-privileges is
set, and a non-root uid keeps none across ``execve`` (Docker sets no ambient
capabilities), so a dedicated non-root supervisor uid could not switch uids.
The idle process and the spec's service drop to ``nobody`` before they run.
The agent's commands hold no capability at all.

Should the supervisor die anyway (the host closed its channel, a bug), the
next call finds the channel closed, counts it, and starts a new one. Should
that fail, the call runs through a plain ``docker exec`` (counted as a
fallback), and only if that fails too is the sandbox reported as crashed.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Mapping
from typing import Any, cast

import docker.errors

from toolgym.errors import ImageNotFound, SandboxCrashed
from toolgym.sandbox import cgroup, cleanup, owner
from toolgym.sandbox.base import AGENT_UID, PLATFORM_DIR, ExecResult
from toolgym.sandbox.budget import MemoryBudget, global_budget, host_budget, host_memory_mb
from toolgym.sandbox.channel import (
    ONE_SHOT_SOURCE,
    SUPERVISOR_SOURCE,
    ChannelLost,
    SupervisorChannel,
    decode_exec_reply,
    python_argv,
    supervisor_config,
)
from toolgym.sandbox.docker_client import daemon_info, docker_client, is_local
from toolgym.sandbox.host_socket import CONTAINER_DIR, CONTAINER_PATH, CONTAINER_TMPFS, HostSocket
from toolgym.sandbox.spec import SERVICE_DIR, SandboxSpec
from toolgym.sandbox.supervised import SupervisedSandbox

AGENT_USER = f"{AGENT_UID}:{AGENT_UID}"
"""uid:gid the agent's commands run as."""
PLATFORM_USER = "0:0"
"""uid:gid of the container, the supervisor and trusted commands (see the module docstring)."""
IDLE_USER = "65534:65534"
"""uid:gid of the container's main process, out of the agent's reach."""
CAPABILITIES = ["SETUID", "SETGID", "KILL"]
"""The bounding set: what the supervisor needs to run and kill the agent's commands."""
DROP_TO_IDLE = (
    "import os, sys; os.setgroups([]); os.setgid(65534); os.setuid(65534); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)
"""Runs its argv as ``nobody``, with no capability left."""
_DOCKER_FRAME = struct.Struct(">BxxxL")


def container_options(spec: SandboxSpec, labels: Mapping[str, str],
                      cgroup_parent: str | None = None,
                      host_socket: HostSocket | None = None) -> dict[str, Any]:
    """The ``containers.run`` keyword arguments that enforce ``spec``'s isolation (in
    ``cgroup_parent``, when given: see :mod:`toolgym.sandbox.cgroup`), with ``host_socket``
    mounted where its supervisor can reach it (:mod:`toolgym.sandbox.host_socket`)."""
    lim = spec.limits
    mem = f"{lim.memory_mb}m"
    tmpfs = {
        spec.workdir: f"rw,size={lim.workdir_mb}m,mode=0755,uid=1000,gid=1000",
        "/tmp": "rw,size=64m,mode=1777",
        PLATFORM_DIR: "rw,size=64m,mode=0700,uid=0,gid=0",
    }
    command = ["sleep", "infinity"]
    if spec.service:
        uid, gid = IDLE_USER.split(":")
        tmpfs[SERVICE_DIR] = f"rw,size=1m,mode=0755,uid={uid},gid={gid}"
        command = ["sh", "-c", '"$@" & exec sleep infinity', "service", *spec.service]
    options: dict[str, Any] = {"cgroup_parent": cgroup_parent} if cgroup_parent else {}
    if host_socket is not None:
        tmpfs[CONTAINER_DIR] = CONTAINER_TMPFS
        options["volumes"] = {str(host_socket.path): {"bind": CONTAINER_PATH, "mode": "ro"}}
    return options | {
        "command": python_argv("python3", DROP_TO_IDLE, *command),
        "init": True,
        "user": PLATFORM_USER,
        "working_dir": spec.workdir,
        "labels": dict(labels),
        "network_mode": "bridge" if spec.network else "none",
        "mem_limit": mem,
        "memswap_limit": mem,
        "nano_cpus": int(lim.cpus * 1e9),
        "pids_limit": lim.pids,
        "read_only": True,
        "tmpfs": tmpfs,
        "cap_drop": ["ALL"],
        "cap_add": CAPABILITIES,
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


class DockerSandbox(SupervisedSandbox):
    r"""One Docker container with a persistent exec channel.

    Create with :meth:`acreate` (or :meth:`create` from sync code); close with
    :meth:`aclose`, or use it as an (async) context manager.

    Example:
        >>> with DockerSandbox.create(SandboxSpec()) as sb:  # doctest: +SKIP
        ...     sb.exec("echo hi").stdout
        'hi\n'
    """

    def __init__(self, container: Any, spec: SandboxSpec, host: str | None = None,
                 host_socket: HostSocket | None = None) -> None:
        super().__init__(container.id, spec.limits, spec.workdir, spec.wipe)
        self.container = container
        self.spec = spec
        self.host = host
        """The daemon it runs on (None: ``DOCKER_HOST`` or the local socket)."""
        self.host_socket = host_socket
        """The socket mounted into the container that channels attach to, past Docker's
        exec stream (:mod:`~toolgym.sandbox.host_socket`); None once an attach failed."""

    # ---------------------------------------------------------------- life cycle
    @classmethod
    async def acreate(
        cls, spec: SandboxSpec | None = None, *, labels: Mapping[str, str] | None = None,
        host: str | None = None, direct: bool | None = None,
    ) -> DockerSandbox:
        """Start a container for ``spec`` and its supervisor, on the daemon at ``host``,
        in this process's memory-capped parent cgroup where the daemon allows one
        (:mod:`toolgym.sandbox.cgroup`). With ``direct`` (default: where the daemon is on
        this machine) the channel goes over a socket mounted into the container, not
        through the daemon (:mod:`~toolgym.sandbox.host_socket`).

        Raises:
            ImageNotFound: the image is not built.
            SandboxUnavailable: no Docker daemon answers.
            SandboxCrashed: the container started but its supervisor did not.
        """
        spec = spec or SandboxSpec()
        all_labels = {**owner.labels(), "toolgym.image": spec.image, **(labels or {})}
        cleanup.register_exit_hook(host)
        parent = await asyncio.to_thread(_cgroup_parent, host)
        host_socket = HostSocket() if (is_local(host) if direct is None else direct) else None
        try:
            return await cls._acreate(spec, all_labels, host, parent, host_socket)
        except BaseException:
            if host_socket is not None:
                host_socket.close()
            raise

    @classmethod
    async def _acreate(cls, spec: SandboxSpec, labels: dict[str, str], host: str | None,
                       parent: str | None, host_socket: HostSocket | None) -> DockerSandbox:
        client = docker_client(host)
        options = container_options(spec, labels, parent, host_socket)

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
        if parent is not None:
            cgroup.confirm(parent, container.id)
        sandbox = cls(container, spec, host, host_socket)
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

    async def _destroy(self) -> None:
        try:
            await asyncio.to_thread(_remove, self.container)
        finally:
            if self.host_socket is not None:
                self.host_socket.close()

    # ------------------------------------------------------------------- channel
    async def _open_channel(self) -> SupervisorChannel:
        api = docker_client(self.host).api

        def start() -> socket.socket:
            exec_id = api.exec_create(
                self.id,
                python_argv("python3", SUPERVISOR_SOURCE, supervisor_config(AGENT_UID)),
                stdin=True,
                stdout=True,
                stderr=True,
                user=PLATFORM_USER,
                workdir="/",
            )["Id"]
            raw = api.exec_start(exec_id, socket=True)
            sock = cast(socket.socket, getattr(raw, "_sock", raw))
            dup = sock.dup()  # ours alone: docker-py's response may close the original
            raw.close()
            sock.close()
            return dup

        try:
            sock = await asyncio.to_thread(start)
        except (docker.errors.DockerException, OSError) as exc:  # OSError: daemon gone
            raise ChannelLost(f"cannot start supervisor: {exc}") from exc
        reader, writer = await asyncio.open_connection(sock=sock)
        channel = SupervisorChannel(_ExecSocket(reader, writer))
        try:
            await channel.start(timeout=15.0)
            if self.host_socket is not None and not await channel.attach(
                    self.host_socket.listener, CONTAINER_PATH):
                # Nothing in the container reaches the socket (a daemon whose /tmp is not
                # ours) or it answered wrong: stay on the exec stream, and stop trying.
                self.events["attach_failed"] += 1
                self.host_socket.close()
                self.host_socket = None
        except BaseException:
            channel.close()
            raise
        return channel

    async def _fallback_exec(self, request: dict[str, Any]) -> ExecResult:
        """Serve one request with a one-shot ``docker exec`` of the supervisor code."""
        api = docker_client(self.host).api
        argv = python_argv("python3", ONE_SHOT_SOURCE, json.dumps(request),
                           supervisor_config(AGENT_UID))

        def run() -> bytes:
            exec_id = api.exec_create(self.id, argv, user=PLATFORM_USER, workdir="/")["Id"]
            return api.exec_start(exec_id)

        out = await asyncio.wait_for(asyncio.to_thread(run), request["timeout"] + 30)
        return decode_exec_reply(json.loads(out))

    async def _hard_kill(self) -> None:
        """``kill -9 -1`` as the agent's user, in a one-shot ``docker exec``."""
        await self._raise_if_dead()
        await asyncio.to_thread(self.container.exec_run, ["kill", "-9", "-1"], user=AGENT_USER)

    async def _raise_if_dead(self) -> None:
        try:
            await asyncio.to_thread(self.container.reload)
        except docker.errors.NotFound as exc:
            raise SandboxCrashed(self.id, "container no longer exists") from exc
        except (docker.errors.DockerException, OSError) as exc:  # requests' ConnectionError
            raise SandboxCrashed(self.id, f"the Docker daemon does not answer: {exc}") from exc
        if self.container.status != "running":
            raise SandboxCrashed(self.id, f"container is {self.container.status}")


class DockerBackend:
    """Starts :class:`DockerSandbox` containers (``sandbox.backend: docker``) on the daemon at
    ``host`` (``sandbox.host``; None: ``DOCKER_HOST`` or the local socket).

    Example:
        >>> DockerBackend(host="tcp://sandboxes:2375").host
        'tcp://sandboxes:2375'
    """

    name = "docker"

    def __init__(self, host: str | None = None, direct: bool | None = None) -> None:
        self.host = host
        self.direct = direct
        """Channels over a socket mounted into each container (None: where the daemon is
        on this machine; see :mod:`~toolgym.sandbox.host_socket`)."""

    async def acreate(
        self, spec: SandboxSpec, *, labels: Mapping[str, str] | None = None
    ) -> DockerSandbox:
        """See :meth:`DockerSandbox.acreate`."""
        return await DockerSandbox.acreate(spec, labels=labels, host=self.host,
                                           direct=self.direct)

    def reap_orphans(self) -> int:
        """Remove containers whose owner process is dead (:func:`cleanup.reap_orphans`)."""
        return cleanup.reap_orphans(self.host)

    def memory_budget(self) -> MemoryBudget:
        """The process-wide budget of this backend's Docker host."""
        return memory_budget(self.host)

    def host_memory_mb(self) -> int:
        """The Docker host's memory."""
        return host_memory_mb(self.host)


def memory_budget(host: str | None = None) -> MemoryBudget:
    """The process-wide memory budget of the Docker host at ``host``."""
    if host is None:
        return global_budget()
    return host_budget(f"Docker host {host}", lambda: host_memory_mb(host))


def _cgroup_parent(host: str | None) -> str | None:
    """The capped parent cgroup of this process's containers on ``host``, if it can have one."""
    return cgroup.parent_for(memory_budget(host).limit_mb, daemon_info(host), is_local(host))


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
