"""``ToolCall``: one call the agent asked for, however it was written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    """A tool name, its arguments and the optional id that OpenAI-style APIs give a call.

    Example:
        >>> ToolCall("bash", {"command": "ls"})
        ToolCall(name='bash', arguments={'command': 'ls'}, id=None)
    """

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
