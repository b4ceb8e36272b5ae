"""The browser tools: ``click``, ``type``, ``press``, ``scroll`` and ``goto``.

Each is one request to the episode's resident driver and returns the page's
new observation. An action the page refuses (an unknown id, an element off
screen, a path that is not one of the site's pages) is an error observation
that still shows the page. There is deliberately no tool that runs
JavaScript or opens an arbitrary URL: the page state the verifier reads can
change only through input events.
"""

from __future__ import annotations

from typing import Any

from toolgym.envs.web import driver
from toolgym.sandbox.base import Sandbox
from toolgym.tools import ToolContext, ToolResult, ToolSet, tool


def _result(reply: dict[str, Any]) -> ToolResult:
    if reply.get("ok"):
        return ToolResult(reply["obs"])
    return ToolResult(f"Error: {reply.get('error')}\n\n{reply.get('obs', '')}".rstrip(), error=True)


def web_tools(*, timeout_s: float = 30.0) -> ToolSet:
    """The five browser tools, each with ``timeout_s`` per call.

    Example:
        >>> web_tools()  # doctest: +NORMALIZE_WHITESPACE
        ToolSet(click(id: int), type(id: int, text: str), press(key: str),
                scroll(direction: str), goto(path: str))
    """

    async def send(sandbox: Sandbox, **message: Any) -> ToolResult:
        return _result(await driver.request(sandbox, message, timeout_s=timeout_s))

    @tool
    async def click(context: ToolContext, id: int) -> ToolResult:  # noqa: A002 - the agent's word
        """Click an element of the page with the mouse.

        Args:
            id: The element's number in brackets in the latest observation, e.g. 3 for [3].
        """
        return await send(context.sandbox, op="click", id=id)

    @tool(name="type")
    async def type_(context: ToolContext, id: int, text: str) -> ToolResult:  # noqa: A002
        """Type text into a field, replacing what it holds; for a drop-down, choose the
        option with this text; for a slider or number field, set this value.

        Args:
            id: The element's number in brackets in the latest observation.
            text: What to type (or the option, or the value).
        """
        return await send(context.sandbox, op="type", id=id, text=text)

    @tool
    async def press(context: ToolContext, key: str) -> ToolResult:
        """Press a key on the focused element, e.g. Enter to submit a form.

        Args:
            key: Enter, Tab, Escape, Backspace, Delete, Space, ArrowUp/Down/Left/Right,
                Home, End, PageUp, PageDown, or one character.
        """
        return await send(context.sandbox, op="press", key=key)

    @tool
    async def scroll(context: ToolContext, direction: str) -> ToolResult:
        """Scroll the page; the observation shows only what is on screen.

        Args:
            direction: "down" or "up" (500 pixels), "top" or "bottom".
        """
        return await send(context.sandbox, op="scroll", direction=direction)

    @tool
    async def goto(context: ToolContext, path: str) -> ToolResult:
        """Open one of this site's pages, e.g. "/navigate-site.html#pricing".

        Args:
            path: A page of this site, optionally with a #section.
        """
        return await send(context.sandbox, op="goto", path=path)

    return ToolSet([click, type_, press, scroll, goto])
