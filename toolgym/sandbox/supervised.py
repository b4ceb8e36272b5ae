"""Sandboxes whose commands go through a :mod:`~toolgym.sandbox.supervisor` channel.

:class:`SupervisedSandbox` holds everything that does not depend on how the
supervisor is reached: exec with limits, files, reset, channel (re)starts and
the bookkeeping of infrastructure events. Backends (Docker, bubblewrap) say
how to open a channel, how to tell whether the sandbox is dead, how to run a
request without the channel, and how to destroy the sandbox.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections import Counter
from collections.abc import Mapping
from typing import Any

from toolgym.errors import SandboxCrashed
from toolgym.sandbox.base import PLATFORM_DIR, Command, ExecResult, State, SyncMixin
from toolgym.sandbox.channel import ChannelLost, SupervisorChannel, exec_request
from toolgym.sandbox.limits import Limits


class SupervisedSandbox(SyncMixin):
    """Base of the sandbox backends: the async API on top of a supervisor channel."""

    def __init__(
        self, sandbox_id: str, limits: Limits, workdir: str, wipe: tuple[str, ...]
    ) -> None:
        self.id = sandbox_id
        self.limits = limits
        self.workdir = workdir
        self.wipe = wipe
        self.sweep_uid = True
        self.platform_dir: str | None = PLATFORM_DIR
        """Emptied on reset beside ``wipe`` (None where the backend has none)."""
        """Reset may kill every process of the sandbox uid (false where the uid is shared)."""
        self.events: Counter[str] = Counter()
        """Counted infrastructure events: channel_restarts, channel_lost, fallback_execs,
        hard_kills, bad_frames (replies refused by the channel's bounds), attach_failed
        (a channel stayed on its start transport: see ``SupervisorChannel.attach``)."""
        self.tainted = False
        """Something in the sandbox broke the supervisor protocol (an oversized or forged
        frame, a failed identity check): a pool replaces it instead of reusing it."""
        self.state = State.OPENED
        self._channel: SupervisorChannel | None = None
        self._channel_lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------- backend hooks
    async def _open_channel(self) -> SupervisorChannel:
        """Start a supervisor and return a started channel to it.

        Raises:
            ChannelLost: it could not be started.
        """
        raise NotImplementedError

    async def _raise_if_dead(self) -> None:
        """Raise :class:`SandboxCrashed` if the sandbox itself is gone."""
        raise NotImplementedError

    async def _fallback_exec(self, request: dict[str, Any]) -> ExecResult:
        """Serve one exec request without the channel (a one-shot process)."""
        raise NotImplementedError

    async def _destroy(self) -> None:
        """Free the sandbox's resources (container, processes)."""
        raise NotImplementedError

    async def _hard_kill(self) -> None:
        """Kill every process of the agent's user without the supervisor's help."""
        raise SandboxCrashed(self.id, "cannot kill the sandbox's processes from outside")

    # ------------------------------------------------------------ life cycle
    async def aclose(self) -> None:
        """Destroy the sandbox. Safe to call twice, and safe under cancellation."""
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        if self._channel is not None:
            self._channel.close()
        # Shielded: a cancelled caller must not leave the sandbox behind.
        await asyncio.shield(self._destroy())

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
                self._note_violation(self._channel)
                self.events["channel_restarts"] += 1
            self._channel = await self._open_channel()
            return self._channel

    def _check_open(self) -> None:
        if self.state is not State.OPENED:
            raise SandboxCrashed(self.id, "sandbox is closed")

    def _note_violation(self, channel: SupervisorChannel) -> None:
        if channel.violation is not None and not self.tainted:
            self.events["bad_frames"] += 1
            self.tainted = True

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
        trusted: bool = False,
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
            trusted: run as the platform's uid instead of the agent's (see
                :class:`~toolgym.sandbox.base.Sandbox`); only for the platform's own
                processes, never for text the agent wrote.

        Raises:
            SandboxCrashed: the sandbox is gone or cannot run commands at all.
        """
        self._check_open()
        timeout = self.limits.timeout_s if timeout is None else timeout
        output_bytes = self.limits.output_bytes if output_bytes is None else output_bytes
        request = exec_request(cmd, timeout=timeout, stdin=stdin, env=env,
                               workdir=workdir or self.workdir, output_bytes=output_bytes,
                               trusted=trusted)
        try:
            channel = await self._ensure_channel()
        except ChannelLost:
            self.events["fallback_execs"] += 1
            await self._raise_if_dead()
            try:
                return await self._fallback_exec(request)
            except Exception as exc:
                raise SandboxCrashed(self.id, f"fallback exec failed: {exc!r}") from exc
        try:
            return await channel.exec(request)
        except ChannelLost:
            # The command (or something) killed the supervisor mid-call. Re-running
            # it could repeat side effects, so report it as a failed command.
            self.events["channel_lost"] += 1
            self._note_violation(channel)
            await self._raise_if_dead()
            return ExecResult(exit_code=-9, stdout="", stderr=(
                "[toolgym] the command killed the sandbox's command runner; "
                "it has been restarted, but the command's output is lost\n"))

    async def aping(self, *, timeout: float = 5.0) -> None:
        """Check that the supervisor answers within ``timeout`` seconds.

        Raises:
            SandboxCrashed: the sandbox is gone or its supervisor does not answer.
        """
        try:
            await self._request("ping", reply_timeout=timeout)
        except RuntimeError as exc:  # the supervisor answered with an error
            raise SandboxCrashed(self.id, f"ping failed: {exc}") from exc

    async def _request(
        self, op: str, *, reply_timeout: float = 30.0, **fields: Any
    ) -> dict[str, Any]:
        """A non-exec supervisor request, retried once on a fresh channel."""
        self._check_open()
        for attempt in (1, 2):
            try:
                channel = await self._ensure_channel()
                return await channel.request(op, reply_timeout=reply_timeout, **fields)
            except ChannelLost:
                if self._channel is not None:
                    self._note_violation(self._channel)
                if attempt == 2:
                    await self._raise_if_dead()
                    raise SandboxCrashed(self.id, f"supervisor lost twice during {op}") from None
        raise AssertionError("unreachable")

    async def awrite_file(
        self, path: str, data: bytes | str, *, mode: int = 0o644, trusted: bool = False
    ) -> None:
        """Write ``data`` to ``path`` (relative paths are under the work dir).

        The file is the agent's (its uid, the agent's access rights), or with
        ``trusted`` the platform's, e.g. hidden tests under
        :data:`~toolgym.sandbox.base.PLATFORM_DIR`.

        Raises:
            OSError: the path is not writable (read-only root, no space, no right).
        """
        raw = data.encode() if isinstance(data, str) else data
        try:
            await self._request("write_file", path=self._abs(path), mode=mode, trusted=trusted,
                                data=base64.b64encode(raw).decode())
        except RuntimeError as exc:
            raise OSError(str(exc)) from None

    async def aread_file(
        self, path: str, *, max_bytes: int = 64 << 20, trusted: bool = False
    ) -> bytes:
        """Return the bytes of ``path`` (relative paths are under the work dir), read with
        the agent's access rights, or the platform's with ``trusted``.

        Raises:
            FileNotFoundError: the file does not exist or cannot be read.
        """
        try:
            reply = await self._request("read_file", path=self._abs(path), max_bytes=max_bytes,
                                        trusted=trusted)
        except RuntimeError as exc:
            raise FileNotFoundError(str(exc)) from None
        return base64.b64decode(reply["data"])

    async def areset(self) -> int:
        """Kill every process of the sandbox user, empty the work dirs and the IPC, and
        check that the supervisor answering is the one this host started.

        Returns:
            how many processes were killed.

        Raises:
            SandboxCrashed: the sandbox is gone, or what answers cannot prove it is
                the supervisor this host started (the sandbox is then tainted).
        """
        try:
            reply, challenge = await self._reset_request()
        except SandboxCrashed:
            # Something of the agent's kills every new supervisor (`pkill -9 python3`
            # in a loop): kill the agent's processes from outside, then try again.
            self.events["hard_kills"] += 1
            await self._hard_kill()
            reply, challenge = await self._reset_request()
        channel = self._channel
        if channel is None or not channel.proves_identity(challenge, reply.get("proof")):
            self.tainted = True
            raise SandboxCrashed(self.id, "the supervisor could not prove its identity")
        return int(reply["killed"])

    async def _reset_request(self) -> tuple[dict[str, Any], str]:
        challenge = secrets.token_hex(16)
        wipe = [*self.wipe, *([self.platform_dir] if self.platform_dir else [])]
        reply = await self._request("reset", wipe=wipe,
                                    sweep_uid=self.sweep_uid, challenge=challenge)
        return reply, challenge

    def _abs(self, path: str) -> str:
        return path if path.startswith("/") else f"{self.workdir}/{path}"

