"""Host side of the supervisor protocol: requests out, replies matched by id.

A :class:`SupervisorChannel` sits on any byte transport that reaches a running
:mod:`toolgym.sandbox.supervisor` (a Docker exec socket, a bubblewrap
process's pipes). It knows nothing about Docker; backends give it a transport.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from toolgym.sandbox import supervisor
from toolgym.sandbox.base import Command, ExecResult

SUPERVISOR_SOURCE = Path(supervisor.__file__).read_text(encoding="utf-8")
"""Sent as ``python3 -c SOURCE``: no image needs toolgym installed."""
ONE_SHOT_SOURCE = (
    SUPERVISOR_SOURCE.split('if __name__ == "__main__":')[0]
    + "sys.stdout.write(json.dumps(run_command(json.loads(sys.argv[1]))))\n"
)
"""Runs one exec request given as argv[1] and prints the reply: the fallback path."""


def exec_request(
    cmd: Command,
    *,
    timeout: float,
    output_bytes: int,
    stdin: bytes | str | None = None,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
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
    }


class ChannelLost(Exception):
    """The supervisor process or its transport went away (internal; backends turn it into
    a fallback or :class:`~toolgym.errors.SandboxCrashed`)."""


class Transport(Protocol):
    """A duplex byte stream to the supervisor."""

    async def read(self) -> bytes:
        """Next bytes of the supervisor's stdout; ``b""`` at end of stream."""
        ...

    async def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class SupervisorChannel:
    """Sends framed requests to a supervisor and resolves replies by id.

    The channel is bound to the event loop it was started on; callers on
    another loop must open a new one (backends do this for you).
    """

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    async def start(self, timeout: float = 10.0) -> None:
        """Start reading replies and check the supervisor answers."""
        self.loop = asyncio.get_running_loop()
        self._reader = self.loop.create_task(self._read_loop())
        await self.request("ping", reply_timeout=timeout)

    @property
    def usable(self) -> bool:
        """Open, and bound to the running loop."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return False
        return not self.closed and running is self.loop

    async def _read_loop(self) -> None:
        buf = bytearray()
        size = supervisor.HEADER.size
        try:
            while True:
                chunk = await self._transport.read()
                if not chunk:
                    break
                buf += chunk
                while len(buf) >= size:
                    (n,) = supervisor.HEADER.unpack_from(buf)
                    if len(buf) < size + n:
                        break
                    message = json.loads(bytes(buf[size : size + n]))
                    del buf[: size + n]
                    future = self._pending.pop(message.pop("id"), None)
                    if future is not None and not future.done():
                        future.set_result(message)
        except (OSError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            self._fail_all()

    def _fail_all(self) -> None:
        self.closed = True
        for future in self._pending.values():
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
        self._pending[rid] = future
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
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
        self._transport.close()
        self._fail_all()


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
