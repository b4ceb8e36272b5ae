"""The host's side of the in-sandbox browser driver (``docker/web/driver/``).

Each call is one ``python3 -I -S webctl.py …`` in the sandbox (a few
milliseconds through the sandbox's exec channel); ``webctl`` forwards the
request to the resident driver over a unix socket. A driver that is gone or
answers nonsense is an infrastructure failure (:class:`SandboxCrashed`, so the
episode ends as ``infra_error``), never an observation and never a score; one
that ran out of time is :class:`SandboxSlow` (a loaded host: the run goes on).
A request too long to pass as one argument is the agent's doing, so it is
refused before it reaches the sandbox, as :class:`BadArguments` (an
observation).

Chromium starts in about a second, but on a loaded host it can take tens of
seconds: :func:`start` retries a start that failed or ran out of time, up to
:data:`START_ATTEMPTS` times, doubling the time it gives each try.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from toolgym.errors import BadArguments, SandboxCrashed, SandboxSlow
from toolgym.sandbox.base import Sandbox

log = logging.getLogger(__name__)

WEBCTL = "/opt/toolgym-web/driver/webctl.py"
REPLY_BYTES = 8 << 20
"""Room for a screenshot's base64 PNG."""
REQUEST_BYTES = (128 << 10) - 1
"""The longest request: the kernel's limit on one argv string (MAX_ARG_STRLEN, NUL included)."""
START_ATTEMPTS = 3
"""Tries of a browser start before the episode is given up (``infra_error``)."""
HOST_MARGIN_S = 10.0
"""How much longer the host waits for ``webctl start`` than the driver's own deadline, so
the driver's reason (not a bare host timeout) comes back."""


async def start(sandbox: Sandbox, url: str, *, width: int = 800, height: int = 600,
                timeout_s: float = 30.0, attempts: int = START_ATTEMPTS) -> dict[str, Any]:
    """Launch the driver and its Chromium on ``url``; return the first observation reply,
    with ``"attempts"``: how many tries it took.

    A try that fails or runs out of time is retried (the next one kills what the
    last one left) with twice the time, up to ``attempts`` tries: ``timeout_s``,
    then ``2 × timeout_s``, ``4 × timeout_s``.

    Raises:
        SandboxSlow: the last try ran out of time.
        SandboxCrashed: the last try failed otherwise (no driver in the image …).
    """
    for attempt in range(1, attempts + 1):
        seconds = timeout_s * 2 ** (attempt - 1)
        try:
            reply = await _run(sandbox, ["start", url, str(width), str(height), f"{seconds:g}"],
                               seconds + HOST_MARGIN_S)
        except SandboxCrashed as exc:
            if attempt == attempts or "no browser driver" in exc.reason:
                raise
            log.warning("sandbox %s: browser start %d of %d failed (%s); trying again with "
                        "%g s", sandbox.id[:12], attempt, attempts, exc.reason[:200], 2 * seconds)
        else:
            return {**reply, "attempts": attempt}
    raise ValueError(f"attempts must be >= 1, got {attempts}")


async def request(sandbox: Sandbox, message: dict[str, Any], *, timeout_s: float = 30.0
                  ) -> dict[str, Any]:
    """Send one request (``{"op": "click", "id": 3}`` …) and return the driver's reply.

    Raises:
        BadArguments: the request is longer than :data:`REQUEST_BYTES`.
        SandboxCrashed: the driver is not running, timed out, or replied nonsense.
    """
    encoded = json.dumps(message)
    if len(encoded.encode()) > REQUEST_BYTES:
        raise BadArguments(f"The arguments are too long for the browser: {len(encoded.encode())} "
                           f"bytes as JSON, at most {REQUEST_BYTES}. Send shorter text.")
    return await _run(sandbox, ["call", encoded], timeout_s)


async def _run(sandbox: Sandbox, args: list[str], timeout_s: float) -> dict[str, Any]:
    result = await sandbox.aexec(["python3", "-I", "-S", WEBCTL, *args], timeout=timeout_s,
                                 output_bytes=REPLY_BYTES)
    if result.timed_out:
        raise SandboxSlow(sandbox.id, f"browser driver timed out after {timeout_s:g} s")
    if "can't open file" in result.stderr:
        raise SandboxCrashed(sandbox.id, f"no browser driver in this sandbox ({WEBCTL}): use the "
                             "toolgym/web image (`toolgym sandbox build web`)")
    try:
        reply = json.loads(result.stdout)
    except ValueError:
        raise SandboxCrashed(sandbox.id, "browser driver replied nonsense: "
                             f"{(result.stdout + result.stderr)[-500:]!r}") from None
    if not isinstance(reply, dict) or reply.get("fatal"):
        error = reply.get("error") if isinstance(reply, dict) else reply
        slow = isinstance(reply, dict) and reply.get("slow")
        raise (SandboxSlow if slow else SandboxCrashed)(
            sandbox.id, f"browser driver {'ran out of time' if slow else 'failed'}: "
                        f"{str(error)[-800:]}")
    return reply
