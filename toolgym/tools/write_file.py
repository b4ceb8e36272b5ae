"""The ``write_file`` tool: create or overwrite a text file in the sandbox.

Like ``read_file`` it goes through ``exec`` (``cat > path`` with the content
on stdin), so relative paths, permissions and error messages are the agent's
own; missing parent directories are created.
"""

from __future__ import annotations

from typing import Any

from toolgym.tools import output
from toolgym.tools.base import Tool, ToolResult
from toolgym.tools.context import ToolContext

SCRIPT = 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1"'


class WriteFileTool(Tool):
    """Write ``content`` to ``path``, replacing the file if it exists.

    Args:
        timeout_s: Wall-clock limit of the write.

    Example:
        >>> WriteFileTool().signature
        'write_file(path: str, content: str)'
    """

    name = "write_file"
    description = (
        "Create or overwrite a text file with the given content (parent directories are "
        "created). Relative paths start at the task's working directory."
    )
    parameters = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "The file to write."},
            "content": {"type": "string", "description": "The complete new contents."},
        },
        "required": ["path", "content"],
    }

    def __init__(self, *, timeout_s: float = 10.0) -> None:
        self.timeout_s = timeout_s

    async def run(self, context: ToolContext, **arguments: Any) -> ToolResult:
        """Write the file; see the class docstring."""
        path, content = arguments["path"], arguments["content"]
        result = await context.sandbox.aexec(
            ["sh", "-c", SCRIPT, "sh", path], stdin=content, timeout=self.timeout_s
        )
        if result.timed_out:
            return ToolResult(output.timeout_note(self.timeout_s, f"writing {path}"),
                              timed_out=True)
        if result.exit_code != 0:
            reason = output.last_reason(result.output) or f"exit code {result.exit_code}"
            return ToolResult(f"Error: could not write {path}: {reason}", error=True)
        size = len(content.encode())
        lines = content.count("\n") + (1 if content and not content.endswith("\n") else 0)
        return ToolResult(f"Wrote {size} bytes ({lines} lines) to {path}.")
