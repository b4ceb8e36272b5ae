"""The host's side of the in-sandbox browser driver (``docker/web/driver/``).

Each call is one ``python3 -I -S webctl.py …`` in the sandbox (a few
milliseconds through the sandbox's exec channel); ``webctl`` forwards the
request to the resident driver over a unix socket. A driver that is gone or
answers nonsense is an infrastructure failure (:class:`SandboxCrashed`, so the
episode ends as ``infra_error``), never an observation and never a score. A
request too long to pass as one argument is the agent's doing, so it is
refused before it reaches the sandbox, as :class:`BadArguments` (an
observation).
"""

from __future__ import annotations

import json
from typing import Any

from toolgym.errors import BadArguments, SandboxCrashed
from toolgym.sandbox.base import Sandbox

WEBCTL = "/opt/toolgym-web/driver/webctl.py"
REPLY_BYTES = 8 << 20
"""Room for a screenshot's base64 PNG."""
REQUEST_BYTES = (128 << 10) - 1
"""The longest request: the kernel's limit on one argv string (MAX_ARG_STRLEN, NUL included)."""


async def start(sandbox: Sandbox, url: str, *, width: int = 800, height: int = 600,
                timeout_s: float = 60.0) -> dict[str, Any]:
    """Launch the driver and its Chromium on ``url``; return the first observation reply."""
    return await _run(sandbox, ["start", url, str(width), str(height)], timeout_s)


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
        raise SandboxCrashed(sandbox.id, f"browser driver timed out after {timeout_s} s")
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
        raise SandboxCrashed(sandbox.id, f"browser driver failed: {str(error)[-800:]}")
    return reply
