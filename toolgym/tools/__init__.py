"""Tools an agent calls in its sandbox, and reading / writing tool calls.

- :class:`Tool` (``tools/base.py``) and the :func:`tool` decorator
  (``tools/function.py``) define tools; their JSON schemas come from
  ``tools/schema.py``, which also validates arguments.
- Built-ins, one per file: :class:`PythonTool` (a persistent session),
  :class:`BashTool`, :class:`ReadFileTool`, :class:`WriteFileTool`.
- :class:`ToolSet` dispatches calls and turns the agent's mistakes into
  observations; each call gets a :class:`ToolContext` (the episode's sandbox
  and task, ``tools/context.py``).
- ``tools/parsing.py`` reads calls out of model output and renders them back;
  ``tools/render.py`` puts the schemas into the prompt.
"""

from toolgym.tools.base import Tool, ToolResult, ToolStatus
from toolgym.tools.bash import BashTool
from toolgym.tools.call import ToolCall
from toolgym.tools.context import ToolContext, ToolTask
from toolgym.tools.function import FunctionTool, tool
from toolgym.tools.parsing import (
    FENCED_PYTHON_BASH,
    Action,
    ParsedCalls,
    action_text,
    assistant_message,
    from_openai_tool_calls,
    parse_action,
    parse_tool_calls,
    render_tool_call,
    to_openai_tool_calls,
    try_parse_action,
    try_parse_tool_calls,
)
from toolgym.tools.python import PythonTool
from toolgym.tools.read_file import ReadFileTool
from toolgym.tools.render import apply_chat_template, render_tools_system_prompt, supports_tools
from toolgym.tools.toolset import ToolOutcome, ToolSet
from toolgym.tools.write_file import WriteFileTool


def default_tools(*, timeout_s: float = 30.0) -> ToolSet:
    """The four built-ins (python, bash, read_file, write_file) with one time limit."""
    return ToolSet([PythonTool(timeout_s=timeout_s), BashTool(timeout_s=timeout_s),
                    ReadFileTool(timeout_s=timeout_s), WriteFileTool(timeout_s=timeout_s)])


__all__ = [
    "FENCED_PYTHON_BASH",
    "Action",
    "BashTool",
    "FunctionTool",
    "ParsedCalls",
    "PythonTool",
    "ReadFileTool",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolOutcome",
    "ToolResult",
    "ToolSet",
    "ToolStatus",
    "ToolTask",
    "WriteFileTool",
    "action_text",
    "apply_chat_template",
    "assistant_message",
    "default_tools",
    "from_openai_tool_calls",
    "parse_action",
    "parse_tool_calls",
    "render_tool_call",
    "render_tools_system_prompt",
    "supports_tools",
    "to_openai_tool_calls",
    "tool",
    "try_parse_action",
    "try_parse_tool_calls",
]
