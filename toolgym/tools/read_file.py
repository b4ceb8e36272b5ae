"""The ``read_file`` tool: show a text file of the sandbox.

It runs ``cat`` through the sandbox's ``exec`` rather than the protocol's
``aread_file``, so relative paths resolve against the working directory, file
permissions are the agent's own, and "no such file" comes back in the words
the agent already knows from the shell.
"""

from __future__ import annotations

from typing import Any

from toolgym.tools import output
from toolgym.tools.base import Tool, ToolResult
from toolgym.tools.context import ToolContext


class ReadFileTool(Tool):
    """Return the text of a file, cut at ``output_bytes``.

    Args:
        timeout_s: Wall-clock limit of the read.
        output_bytes: Bytes shown; longer files are cut with a note.

    Example:
        >>> ReadFileTool().signature
        'read_file(path: str)'
    """

    name = "read_file"
    description = (
        "Return the contents of a text file. Relative paths start at the task's working directory."
    )
    parameters = {
        "type": "object",
        "properties": {"path": {"type": "string", "description": "The file to read."}},
        "required": ["path"],
    }

    def __init__(self, *, timeout_s: float = 10.0, output_bytes: int = 32_768) -> None:
        self.timeout_s = timeout_s
        self.output_bytes = output_bytes

    async def run(self, context: ToolContext, **arguments: Any) -> ToolResult:
        """Read ``arguments["path"]``; see the class docstring."""
        path = arguments["path"]
        result = await context.sandbox.aexec(
            ["cat", "--", path], timeout=self.timeout_s, output_bytes=self.output_bytes
        )
        if result.timed_out:
            return ToolResult(output.timeout_note(self.timeout_s, f"reading {path}"),
                              timed_out=True)
        if result.exit_code != 0:
            reason = output.last_reason(result.stderr) or f"exit code {result.exit_code}"
            return ToolResult(f"Error: could not read {path}: {reason}", error=True)
        if "\x00" in result.stdout:
            return ToolResult(
                f"Error: {path} looks like a binary file; inspect it with a tool that can "
                "decode it instead.", error=True)
        if not result.stdout:
            return ToolResult(f"({path} is empty)")
        text = result.stdout
        if result.truncated:
            text = output.join(text, output.truncation_note(self.output_bytes))
        return ToolResult(text, truncated=result.truncated)
