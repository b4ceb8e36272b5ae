"""The ``python`` tool: a persistent Python session in the sandbox, like a notebook.

Variables, functions and imports defined in one call are there in the next,
because the code runs in a small kernel process inside the sandbox (see
:mod:`toolgym.tools._kernel` for the design and its two-layer time limit). The
kernel is started on the first call, lives for the episode and is killed by the
sandbox's reset, so every episode starts with a fresh session. When a kernel
had to be killed or has died, the observation says that state was lost.
"""

from __future__ import annotations

import asyncio
import json
import re
import weakref
from pathlib import Path
from typing import Any

from toolgym.sandbox.base import Sandbox
from toolgym.tools import _kernel, output
from toolgym.tools.base import Tool, ToolResult
from toolgym.tools.context import ToolContext

KERNEL_SOURCE = Path(_kernel.__file__).read_text(encoding="utf-8")
"""Sent with each call (a few kB): the image needs only python3, not toolgym."""
BOOT = _kernel.BOOT
BACKSTOP_S = _kernel.KILL_GRACE_S + _kernel.START_TIMEOUT_S + 5.0
"""Extra time the sandbox gives the client beyond the cell's timeout before killing it."""

LOST = "All variables, functions and imports from earlier calls are lost."
RESTARTED_NOTE = (
    "[note: the Python process had stopped since the last call, so a fresh one was started. "
    f"{LOST}]"
)


class PythonTool(Tool):
    """Run Python code in a session that keeps its state across calls.

    Args:
        timeout_s: Wall-clock limit of one cell.
        output_bytes: Output kept per cell (what the code prints); the rest is
            dropped with a note.
        state_dir: Where the kernel's socket and pid live in the sandbox.
            Default: ``/tmp/.toolgym-python-<sandbox id>``, inside /tmp so the
            sandbox reset wipes it, and per sandbox so sandboxes that share a
            /tmp (the unisolated local backend) never share a kernel.
        python: The interpreter to run in the sandbox.

    Example:
        >>> tool = PythonTool(timeout_s=10)
        >>> tool.signature
        'python(code: str)'
        >>> # x = await tool(context, code="x = 41"); await tool(context, code="x + 1") -> '42'
    """

    name = "python"
    description = (
        "Run Python code in a persistent session, like a notebook cell: variables, functions "
        "and imports stay defined for later calls. Returns what the code prints, then the value "
        "of the last line if it is an expression, or the error's traceback. Runs in the task's "
        "working directory, without network access."
    )
    parameters = {
        "type": "object",
        "properties": {"code": {"type": "string", "description": "The Python code to run."}},
        "required": ["code"],
    }

    def __init__(
        self,
        *,
        timeout_s: float = 30.0,
        output_bytes: int = 16_384,
        state_dir: str | None = None,
        python: str = "python3",
    ) -> None:
        self.timeout_s = timeout_s
        self.output_bytes = output_bytes
        self.state_dir = state_dir
        self.python = python
        self._locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()

    async def run(self, context: ToolContext, **arguments: Any) -> ToolResult:
        """Run ``arguments["code"]`` as one cell; see the class docstring."""
        sandbox = context.sandbox
        request = {"code": arguments["code"], "timeout": self.timeout_s,
                   "output_bytes": self.output_bytes}
        async with self._lock(sandbox):  # one cell at a time per sandbox, like a kernel
            result = await sandbox.aexec(
                [*self._argv("client", sandbox), str(self.timeout_s)],
                stdin=json.dumps(request),
                timeout=self.timeout_s + BACKSTOP_S,
                output_bytes=8 * self.output_bytes + 4 * _kernel.VALUE_CHARS + 65_536,
            )
            if result.timed_out:  # the client itself hung: kill the kernel from outside
                await sandbox.aexec(self._argv("kill", sandbox), timeout=10)
                return ToolResult(self._killed_text(), timed_out=True)
        try:  # the kernel's reply line, then the client's line
            reply: dict[str, Any] = {}
            for line in result.stdout.strip().splitlines()[-2:]:
                reply.update(json.loads(line))
            if "status" not in reply:
                raise ValueError("no reply from the kernel")
        except (ValueError, TypeError):
            text = output.join(result.stdout, result.stderr, output.exit_note(result.exit_code))
            return ToolResult(f"Error: the Python session could not run the code.\n{text}",
                              error=True)
        return self._format(reply)

    def _argv(self, mode: str, sandbox: Sandbox) -> list[str]:
        state_dir = self.state_dir or "/tmp/.toolgym-python-" + re.sub(r"\W", "", sandbox.id)[:16]
        # -I -S: the client starts on every call, so it skips site-packages (the kernel doesn't)
        return [self.python, "-I", "-S", "-c", BOOT, KERNEL_SOURCE, mode, state_dir]

    def _lock(self, sandbox: Sandbox) -> asyncio.Lock:
        try:
            return self._locks.setdefault(sandbox, asyncio.Lock())
        except TypeError:  # a sandbox that cannot be weakly referenced: no cross-call lock
            return asyncio.Lock()

    def _killed_text(self) -> str:
        return (
            f"[timed out: the code ran longer than {self.timeout_s:g} s and did not stop when "
            f"interrupted, so the Python process was killed and will be restarted. {LOST}]"
        )

    def _format(self, reply: dict[str, Any]) -> ToolResult:
        status = reply.get("status")
        notes = [RESTARTED_NOTE] if reply.get("kernel_start") == "restarted" else []
        if reply.get("kernel") == "killed":
            return ToolResult(output.join(*notes, self._killed_text()), timed_out=True)
        if reply.get("kernel") == "died":
            died = ("[the Python process exited while running this code (os._exit, a crash, or "
                    f"out of memory). {LOST} The next call starts a fresh process.]")
            return ToolResult(output.join(*notes, died), error=True)
        truncated = reply.get("output_total", 0) > self.output_bytes
        parts = [*notes, reply.get("output"), reply.get("value"), reply.get("error")]
        if truncated:
            parts.append(output.truncation_note(self.output_bytes, reply["output_total"]))
        if status == "timeout":
            parts.append(
                f"[timed out: the code ran longer than {self.timeout_s:g} s and was interrupted "
                "where the traceback shows. Variables defined before that are kept.]"
            )
        return ToolResult(output.join(*parts), error=status == "error",
                          timed_out=status == "timeout", truncated=truncated)
