"""The ``@tool`` decorator and the ``Tool`` base class."""

from __future__ import annotations

from typing import Literal

import pytest

from toolgym.errors import BadArguments
from toolgym.tools import FunctionTool, Tool, ToolResult, ToolStatus, tool


@tool
async def scale(context, x: float, factor: int = 2, unit: Literal["m", "cm"] = "m") -> str:
    """Multiply a length.

    The result keeps the unit.

    Args:
        x: The length.
        factor: How many times.
        unit: Its unit.
    """
    return f"{x * factor} {unit}"


def test_decorator_builds_the_openai_function_schema():
    assert isinstance(scale, FunctionTool) and isinstance(scale, Tool)
    assert scale.to_schema() == {
        "type": "function",
        "function": {
            "name": "scale",
            "description": "Multiply a length.\n\nThe result keeps the unit.",
            "parameters": {
                "type": "object",
                "properties": {
                    "x": {"type": "number", "description": "The length."},
                    "factor": {"type": "integer", "description": "How many times.", "default": 2},
                    "unit": {"type": "string", "enum": ["m", "cm"], "description": "Its unit.",
                             "default": "m"},
                },
                "required": ["x"],
            },
        },
    }
    assert scale.signature == 'scale(x: float, factor: int = 2, unit: one of "m", "cm" = "m")'
    assert scale.__name__ == "scale" and "Multiply" in scale.__doc__


async def test_call_validates_then_runs_and_wraps_strings(host_context):
    result = await scale(host_context, x=2, factor=3)
    assert result == ToolResult("6.0 m")  # the int 2 arrived as the float 2.0
    assert result.status is ToolStatus.OK
    with pytest.raises(BadArguments, match="`factor` must be int"):
        await scale(host_context, x=1.0, factor="3")


async def test_decorator_with_options_and_tool_result_return(host_context):
    @tool(name="run-ls", description="List files.")
    async def ls(context, path: str = ".") -> ToolResult:
        result = await context.sandbox.aexec(["ls", path])
        return ToolResult(result.output, error=not result.ok)

    assert ls.name == "run-ls" and ls.description == "List files."
    bad = await ls(host_context, path="does-not-exist")
    assert bad.error and bad.status is ToolStatus.TOOL_ERROR


def test_decorator_rejects_what_it_cannot_describe():
    def not_async(context, x: int) -> str:
        """Doc."""
        return ""

    async def no_doc(context, x: int) -> str:
        return ""

    async def no_context() -> str:
        """Doc."""
        return ""

    async def bad_type(context, x: bytes) -> str:
        """Doc."""
        return ""

    with pytest.raises(TypeError, match="async def"):
        tool(not_async)
    with pytest.raises(TypeError, match="docstring or a description"):
        tool(no_doc)
    with pytest.raises(TypeError, match="ToolContext as its first parameter"):
        tool(no_context)
    with pytest.raises(TypeError, match="no JSON schema"):
        tool(bad_type)
    with pytest.raises(ValueError, match="not allowed"):
        tool(name="has space")(scale.fn)


def test_tool_result_status():
    assert ToolResult("x").status is ToolStatus.OK
    assert ToolResult("x", error=True).status is ToolStatus.TOOL_ERROR
    assert ToolResult("x", error=True, timed_out=True).status is ToolStatus.TIMEOUT
