"""The ``get(key)`` tool, and the tool set that also reads the bare call ``get a``.

``get`` is a lookup in the episode's hidden table (the task's ``data``), read
through the :class:`~toolgym.tools.ToolContext`: no sandbox. A call is written
either in the Hermes format every toolgym env reads or as the bare command
``get KEY`` (three tokens instead of twenty, which a tiny model learns from
scratch in a short SFT); :class:`KeyChainTools` reads both, so dispatch,
counting and error capping are the :class:`~toolgym.tools.ToolSet`'s own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from toolgym.envs.keychain.tasks import lookup
from toolgym.tools import (
    Action,
    ParsedCalls,
    Tool,
    ToolCall,
    ToolContext,
    ToolResult,
    ToolSet,
)
from toolgym.tools.parsing import TEXT

__all__ = ["BARE_CALL", "GetTool", "KeyChainTools", "keychain_tools"]

BARE_CALL = re.compile(r"get\s+(\S+)")
"""The short form of a call, ``get a``: the whole message, surrounding blanks aside."""


class GetTool(Tool):
    """``get(key)``: where ``key`` points in the episode's table (a key, or the digit).

    Example:
        >>> GetTool().signature
        'get(key: str)'
    """

    name = "get"
    description = "Show where a key points: another key, or the digit at the end of the chain."
    parameters = {"type": "object", "required": ["key"],
                  "properties": {"key": {"type": "string", "description": "A key, a-h."}}}
    needs_sandbox = False

    async def run(self, context: ToolContext, **arguments: Any) -> ToolResult:
        """Look ``arguments["key"]`` up in the task's table; an unknown key is an error."""
        text, ok = lookup(context.task, arguments["key"])
        return ToolResult(text, error=not ok)


class KeyChainTools(ToolSet):
    """A :class:`~toolgym.tools.ToolSet` that reads ``get KEY`` as a call, too.

    Example:
        >>> keychain_tools().parse("  get a ").calls
        [ToolCall(name='get', arguments={'key': 'a'}, id=None)]
    """

    def parse(self, action: Action) -> ParsedCalls:
        """The bare call of a text message, else what :meth:`ToolSet.parse` reads."""
        if isinstance(action, Mapping):
            text = "" if action.get("tool_calls") else str(action.get("content") or "")
        else:
            text = action
        bare = BARE_CALL.fullmatch(text.strip())
        if bare is not None:
            return ParsedCalls([ToolCall("get", {"key": bare.group(1)})], None, TEXT)
        return super().parse(action)


def keychain_tools() -> KeyChainTools:
    """KeyChain-v0's tool set: ``get``, in either call form."""
    return KeyChainTools([GetTool()])
