"""Host side of the supervisor protocol: requests out, replies matched by id.

A :class:`SupervisorChannel` sits on any byte transport that reaches a running
:mod:`toolgym.sandbox.supervisor` (a Docker exec socket, a bubblewrap
process's pipes). It knows nothing about Docker; backends give it a transport.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import secrets
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from toolgym.sandbox import supervisor
from toolgym.sandbox.base import Command, ExecResult

SUPERVISOR_SOURCE = Path(supervisor.__file__).read_text(encoding="utf-8")
"""Sent as ``python3 -I -S -c SOURCE``: no image needs toolgym installed, and no file in
the sandbox is the supervisor's code."""
ONE_SHOT_SOURCE = (
    SUPERVISOR_SOURCE.split('if __name__ == "__main__":')[0]
    + "configure(sys.argv[:1] + sys.argv[2:])\n"
    + "sys.stdout.write(json.dumps(run_command(json.loads(sys.argv[1]))))\n"
)
"""Runs one exec request given as argv[1] (config as argv[2]) and prints the reply: the
fallback path."""
SMALL_REPLY_BYTES = 64 << 10
"""Largest reply frame to a request that carries no data (ping, reset, write_file)."""


def python_argv(python: str, source: str, *args: str) -> list[str]:
    """``python -I -S -c source``: isolated mode ignores PYTHON* variables, the user site and
    the cwd (a module the agent planted cannot shadow the standard library), -S skips
    ``site`` (no ``.pth`` file runs)."""
    return [python, "-I", "-S", "-u", "-c", source, *args]


def supervisor_config(agent_uid: int | None, rlimits: Mapping[str, int] | None = None) -> str:
    """The supervisor's configuration argument (see :mod:`~toolgym.sandbox.supervisor`)."""
    return json.dumps({"agent_uid": agent_uid, "rlimits": dict(rlimits or {})})


def _b64_len(n: int) -> int:
    return 4 * (n // 3 + 1)


def reply_limit(op: str, fields: Mapping[str, Any]) -> int:
    """The most bytes an honest supervisor's reply frame to this request can have."""
    if op == "exec":
        return 2 * _b64_len(int(fields["output_bytes"])) + 4096
    if op == "read_file":
        return _b64_len(int(fields["max_bytes"])) + 4096
    return SMALL_REPLY_BYTES


def exec_request(
    cmd: Command,
    *,
    timeout: float,
    output_bytes: int,
    stdin: bytes | str | None = None,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    trusted: bool = False,
) -> dict[str, Any]:
    """The fields of a supervisor ``exec`` request."""
    if isinstance(stdin, str):
        stdin = stdin.encode()
    return {
        "cmd": cmd if isinstance(cmd, str) else list(cmd),
        "timeout": timeout,
        "stdin": None if stdin is None else base64.b64encode(stdin).decode(),
        "env": dict(env or {}),
        "cwd": workdir,
        "output_bytes": output_bytes,
        "trusted": trusted,
    }


class ChannelLost(Exception):
    """The supervisor process or its transport went away (internal; backends turn it into
    a fallback or :class:`~toolgym.errors.SandboxCrashed`)."""


class ProtocolViolation(ValueError):
    """A frame no honest supervisor sends: too long for what was asked, or not a reply."""


class Transport(Protocol):
    """A duplex byte stream to the supervisor."""

    async def read(self) -> bytes:
        """Next bytes of the supervisor's stdout; ``b""`` at end of stream."""
        ...

    async def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class StreamTransport:
    """An asyncio stream that carries the protocol and nothing else: the direct socket of
    :meth:`SupervisorChannel.attach`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self) -> bytes:
        return await self._reader.read(1 << 16)

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    def close(self) -> None:
        self._writer.close()


class SupervisorChannel:
    """Sends framed requests to a supervisor and resolves replies by id.

    The channel is bound to the event loop it was started on; callers on
    another loop must open a new one (backends do this for you).

    The host side is bounded: a reply frame longer than the largest reply to
    the requests in flight (:func:`reply_limit`) is refused from its header,
    before any of its body is buffered, and closes the channel with
    :attr:`violation` set. Request ids start at a random offset, so a frame
    forged without seeing the requests matches nothing.
    """

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        """Where requests go: the start transport, or the direct socket once attached."""
        self._transports: list[Transport] = [transport]
        self._ids = itertools.count(secrets.randbits(48))
        self._pending: dict[int, tuple[asyncio.Future[dict[str, Any]], int]] = {}
        self._readers: list[asyncio.Task[None]] = []
        self._token = secrets.token_hex(16)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closed = False
        self.violation: str | None = None
        """Why the channel was closed on a frame no honest supervisor sends, if it was."""
        self.supervisor_pid: int | None = None

    async def start(self, timeout: float = 10.0) -> None:
        """Start reading replies, check the supervisor answers and hand it the token."""
        self.loop = asyncio.get_running_loop()
        self._readers.append(self.loop.create_task(self._read_loop(self._transport)))
        reply = await self.request("ping", reply_timeout=timeout, token=self._token)
        self.supervisor_pid = int(reply["pid"])

    async def attach(self, listener: socket.socket, path: str, timeout: float = 5.0) -> bool:
        """Move requests onto a unix socket the supervisor connects to ``listener`` through
        (``path`` is where it sees the listener), when it can and proves the token.

        The supervisor connects and writes its proof before it answers the ``attach``
        request, so its connection is waiting when the answer comes; one that cannot
        prove the token (a supervisor of another channel, anything else that reached
        the socket) is closed and the next one is tried until ``timeout``. Replies to
        requests sent before the move still come on the old transport, which stays
        open: the supervisor exits when it closes.

        Returns:
            whether requests now go over the socket (False: where they went before,
            e.g. a remote daemon, whose containers cannot reach this host's socket).
        """
        assert self.loop is not None
        challenge = secrets.token_hex(16)
        try:
            await self.request("attach", reply_timeout=timeout, path=path, challenge=challenge)
        except RuntimeError:  # it could not connect: no such socket in the sandbox
            return False
        deadline = self.loop.time() + timeout
        while (left := deadline - self.loop.time()) > 0:
            try:
                conn, _ = await asyncio.wait_for(self.loop.sock_accept(listener), left)
            except TimeoutError:
                break
            reader, writer = await asyncio.open_connection(sock=conn)
            try:
                proof = await asyncio.wait_for(_first_frame(reader), max(left, 0.1))
            except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError):
                proof = None
            if self.proves_identity(challenge, proof):
                transport = StreamTransport(reader, writer)
                self._transports.append(transport)
                self._readers.append(self.loop.create_task(self._read_loop(transport)))
                self._transport = transport
                return True
            writer.close()
        return False

    @property
    def direct(self) -> bool:
        """Requests go over the direct socket of :meth:`attach`."""
        return len(self._transports) > 1

    def proves_identity(self, challenge: str, proof: object) -> bool:
        """True when ``proof`` (from a reset reply) shows the token this channel handed over."""
        expected = hashlib.sha256((self._token + challenge).encode()).hexdigest()
        return isinstance(proof, str) and secrets.compare_digest(proof, expected)

    @property
    def usable(self) -> bool:
        """Open, and bound to the running loop."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return False
        return not self.closed and running is self.loop

    def _frame_limit(self) -> int:
        return max((limit for _, limit in self._pending.values()), default=SMALL_REPLY_BYTES)

    async def _read_loop(self, transport: Transport) -> None:
        buf = bytearray()
        size = supervisor.HEADER.size
        try:
            while True:
                chunk = await transport.read()
                if not chunk:
                    break
                buf += chunk
                while len(buf) >= size:
                    (n,) = supervisor.HEADER.unpack_from(buf)
                    if n > self._frame_limit():
                        raise ProtocolViolation(
                            f"a reply frame claimed {n} bytes, more than the "
                            f"{self._frame_limit()} the requests in flight allow")
                    if len(buf) < size + n:
                        break
                    message = json.loads(bytes(buf[size : size + n]))
                    del buf[: size + n]
                    if not isinstance(message, dict):
                        raise ProtocolViolation("a reply frame is not a JSON object")
                    entry = self._pending.pop(message.pop("id", None), None)
                    if entry is not None and not entry[0].done():
                        entry[0].set_result(message)
        except ProtocolViolation as exc:
            self.violation = str(exc)
        except (OSError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            for each in self._transports:
                each.close()
            self._fail_all()

    def _fail_all(self) -> None:
        self.closed = True
        for future, _ in self._pending.values():
            if not future.done():
                future.set_exception(ChannelLost("supervisor channel closed"))
        self._pending.clear()

    async def request(self, op: str, *, reply_timeout: float, **fields: Any) -> dict[str, Any]:
        """Send one request and wait for its reply.

        Raises:
            ChannelLost: the channel closed or the reply did not come in time.
            RuntimeError: the supervisor reported an error serving the request.
        """
        if self.closed:
            raise ChannelLost("supervisor channel closed")
        assert self.loop is not None
        rid = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        self._pending[rid] = (future, reply_limit(op, fields))
        try:
            await self._transport.write(supervisor.encode_frame({"id": rid, "op": op, **fields}))
            reply = await asyncio.wait_for(asyncio.shield(future), reply_timeout)
        except (OSError, TimeoutError) as exc:
            self._pending.pop(rid, None)
            self.close()
            raise ChannelLost(f"{op} got no reply: {exc!r}") from exc
        except asyncio.CancelledError:
            self._pending.pop(rid, None)
            raise
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    async def exec(self, request: Mapping[str, Any], *, grace_s: float = 10.0) -> ExecResult:
        """Run an :func:`exec_request` through the supervisor and decode its result."""
        reply = await self.request(
            "exec", reply_timeout=float(request["timeout"]) + grace_s, **request
        )
        return decode_exec_reply(reply)

    def close(self) -> None:
        """Close the transport; pending requests fail with :class:`ChannelLost`."""
        for reader in self._readers:
            if not reader.done():
                reader.cancel()
        for transport in self._transports:
            transport.close()
        self._fail_all()


async def _first_frame(reader: asyncio.StreamReader) -> object:
    """The ``proof`` of the first frame on a socket the supervisor attached through."""
    (n,) = supervisor.HEADER.unpack(await reader.readexactly(supervisor.HEADER.size))
    if n > SMALL_REPLY_BYTES:
        raise ValueError(f"a first frame of {n} bytes")
    message = json.loads(await reader.readexactly(n))
    return message.get("proof") if isinstance(message, dict) else None


def decode_exec_reply(reply: Mapping[str, Any]) -> ExecResult:
    """Turn a supervisor ``exec`` reply into an :class:`ExecResult`."""
    return ExecResult(
        exit_code=int(reply["exit_code"]),
        stdout=base64.b64decode(reply["stdout"]).decode("utf-8", "replace"),
        stderr=base64.b64decode(reply["stderr"]).decode("utf-8", "replace"),
        timed_out=bool(reply["timed_out"]),
        truncated=bool(reply["truncated"]),
        duration_s=float(reply["duration_s"]),
    )
