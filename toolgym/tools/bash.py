"""The ``bash`` tool: run a shell command line in the sandbox.

Each call is a fresh ``bash`` in the task's working directory (``cd`` and
variables do not carry over; chain with ``&&``). stderr is merged into stdout so
the agent sees messages in the order a terminal would show them. The command
line goes in on the shell's stdin and is ``eval``-ed, which keeps bash's own
error messages free of any wrapper text; the command itself reads an empty
stdin, as it would under ``docker exec`` without ``-i``.
"""

from __future__ import annotations

from typing import Any

from toolgym.tools import output
from toolgym.tools.base import Tool, ToolResult
from toolgym.tools.context import ToolContext

WRAPPER = 'exec 2>&1; eval "$(cat)"'
QUIET_ENV = {"PAGER": "cat", "GIT_PAGER": "cat", "TERM": "dumb"}
"""No pager waits for a keypress that never comes."""


class BashTool(Tool):
    r"""Run a bash command line and return its output and exit status.

    Args:
        timeout_s: Wall-clock limit; the command's whole process group is
            killed when it runs out.
        output_bytes: Output kept; the rest is dropped with a note.
        shell: The bash binary in the sandbox.

    Example:
        >>> BashTool(timeout_s=5).signature
        'bash(command: str)'
        >>> # (await BashTool()(sandbox, command="echo hi; exit 3")).text -> 'hi\n[exit code 3]'
    """

    name = "bash"
    description = (
        "Run a bash command line in the task's working directory and return its output "
        "(stdout and stderr together) and exit code. Each call starts a new shell: `cd` and "
        "variables do not carry over, so chain commands with `&&`. No network access; "
        "interactive programs get no input."
    )
    parameters = {
        "type": "object",
        "properties": {"command": {"type": "string", "description": "The command line to run."}},
        "required": ["command"],
    }

    def __init__(
        self, *, timeout_s: float = 30.0, output_bytes: int = 16_384, shell: str = "bash"
    ) -> None:
        self.timeout_s = timeout_s
        self.output_bytes = output_bytes
        self.shell = shell

    async def run(self, context: ToolContext, **arguments: Any) -> ToolResult:
        """Run ``arguments["command"]``; see the class docstring."""
        result = await context.sandbox.aexec(
            [self.shell, "-c", WRAPPER],
            stdin=arguments["command"],
            timeout=self.timeout_s,
            env=QUIET_ENV,
            output_bytes=self.output_bytes,
        )
        notes: list[str | None] = []
        if result.truncated:
            notes.append(output.truncation_note(self.output_bytes))
        if result.timed_out:
            notes.append(output.timeout_note(self.timeout_s))
        else:
            notes.append(output.exit_note(result.exit_code))
        return ToolResult(
            output.join(result.stdout, result.stderr, *notes),
            error=not result.ok,
            timed_out=result.timed_out,
            truncated=result.truncated,
        )
