"""The ``@tool`` decorator: a typed async function and its docstring become a :class:`Tool`.

Writing the schema by hand duplicates what the signature already says and
drifts from it. The decorator reads the parameter types (after the
:class:`~toolgym.tools.context.ToolContext`, which the function receives first:
``context.sandbox``, ``context.task``) and the Google-style docstring: its
description becomes the tool's description, its ``Args:`` entries the
per-parameter descriptions.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, overload

from toolgym.tools.base import Tool, ToolResult, check_tool_name
from toolgym.tools.context import ToolContext
from toolgym.tools.schema import function_parameters, parse_docstring

ToolFunction = Callable[..., Awaitable[str | ToolResult]]
"""``async def f(context, **typed_params) -> str | ToolResult``."""


class FunctionTool(Tool):
    """A :class:`Tool` that calls an async function; made by :func:`tool`.

    Example:
        >>> async def shout(context, text: str) -> str:
        ...     '''Upper-case a text.
        ...
        ...     Args:
        ...         text: What to shout.
        ...     '''
        ...     return text.upper()
        >>> FunctionTool(shout).parameters["properties"]
        {'text': {'type': 'string', 'description': 'What to shout.'}}
    """

    def __init__(
        self, fn: ToolFunction, *, name: str | None = None, description: str | None = None
    ) -> None:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"@tool needs an `async def` function, got {fn!r}")
        if not list(inspect.signature(fn).parameters):
            raise TypeError(
                f"{fn.__name__}: a tool function takes the ToolContext as its first parameter"
            )
        self.fn = fn
        self.name = check_tool_name(name or fn.__name__)
        doc_description, _ = parse_docstring(fn.__doc__)
        self.description = description if description is not None else doc_description
        if not self.description:
            raise TypeError(f"{fn.__name__}: give the tool a docstring or a description=")
        self.parameters = function_parameters(fn, skip=1)
        functools.update_wrapper(self, fn)

    async def run(self, context: ToolContext, **arguments: Any) -> ToolResult:
        """Call the function; a plain string result becomes a successful :class:`ToolResult`."""
        result = await self.fn(context, **arguments)
        return result if isinstance(result, ToolResult) else ToolResult(str(result))


@overload
def tool(fn: ToolFunction, /) -> FunctionTool: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None
) -> Callable[[ToolFunction], FunctionTool]: ...


def tool(
    fn: ToolFunction | None = None, /, *, name: str | None = None, description: str | None = None
) -> FunctionTool | Callable[[ToolFunction], FunctionTool]:
    """Make a :class:`Tool` from a typed async function; usable bare or with options.

    Args:
        fn: ``async def f(context, ...) -> str | ToolResult`` with annotated
            parameters and a Google-style docstring.
        name: The tool's name (default: the function's name).
        description: The tool's description (default: the docstring's text
            before its first section).

    Raises:
        TypeError: at decoration time, when a parameter has no JSON type or the
            docstring documents parameters that do not exist.

    Example:
        >>> @tool
        ... async def count_lines(context, path: str, limit: int | None = None) -> str:
        ...     '''Count the lines of a file.
        ...
        ...     Args:
        ...         path: File to count, relative to the work dir.
        ...         limit: Stop counting here.
        ...     '''
        ...     result = await context.sandbox.aexec(["wc", "-l", path])
        ...     return result.stdout
        >>> count_lines.signature
        'count_lines(path: str, limit: int | None = null)'
    """
    if fn is not None:
        return FunctionTool(fn, name=name, description=description)
    return lambda f: FunctionTool(f, name=name, description=description)
