"""``ToolSet``: the tools of an environment, and the one place calls are dispatched.

An environment hands the model's text to :meth:`ToolSet.dispatch_text` (or what
:meth:`ToolSet.parse` read of a message to :meth:`ToolSet.dispatch_parsed`, or
one :class:`ToolCall` to :meth:`ToolSet.dispatch`) and gets back
observations. The agent's mistakes (malformed calls, unknown tools, bad
arguments, an exception inside a tool, too many calls in one message) become
observations with a status, and are counted; an error observation is capped at
``error_chars`` here, for every tool, so a tool that echoes a megabyte of the
agent's input (or raises with one) cannot blow the context. Infrastructure
failures (:class:`~toolgym.errors.SandboxError`) propagate, so the episode is
reported as ``infra_error`` and never scored.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from toolgym.errors import ParseError, SandboxError, ToolCallError
from toolgym.tools import output
from toolgym.tools.base import Tool, ToolStatus, check_tool_name
from toolgym.tools.call import ToolCall
from toolgym.tools.context import ToolContext
from toolgym.tools.parsing import (
    Action,
    Fences,
    ParsedCalls,
    check_call,
    error_status,
    try_parse_action,
)

log = logging.getLogger(__name__)

MAX_CALLS = 32
"""Tool calls one assistant message may make; a message with more runs none of them."""
ERROR_CHARS = 16_384
"""Characters of an error observation kept (the bash and python tools' output cap)."""


@dataclass(frozen=True)
class ToolOutcome:
    """One dispatched call (or one unreadable message): the observation and its status.

    Example:
        >>> ToolOutcome(None, "Found </tool_call> without a <tool_call> before it.",
        ...             ToolStatus.PARSE_ERROR).ok
        False
    """

    call: ToolCall | None
    """The call, or None when the message could not be parsed into calls."""
    text: str
    """The observation for the agent."""
    status: ToolStatus
    truncated: bool = False
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the tool ran and reported success."""
        return self.status is ToolStatus.OK


class ToolSet(Mapping[str, Tool]):
    """A name → :class:`Tool` mapping that parses calls, dispatches them and counts outcomes.

    ``counts`` accumulates over the set's life (it may serve many episodes);
    per-episode counts come from the returned :class:`ToolOutcome` statuses.

    Args:
        tools: The tools; names must be unique.
        fenced: Fenced-code convention for :meth:`parse` (off by default; see
            :mod:`toolgym.tools.parsing`).
        max_calls: Calls one message may make (:data:`MAX_CALLS`); a message
            with more is refused whole, as a parse error.
        error_chars: Characters kept of an observation that is not ``ok``
            (:data:`ERROR_CHARS`); the start and end are kept, with a note.

    Raises:
        ValueError: two tools share a name, or a name is not a valid function name.

    Example:
        >>> from toolgym.tools import BashTool, PythonTool
        >>> tools = ToolSet([PythonTool(), BashTool()])
        >>> sorted(tools)
        ['bash', 'python']
        >>> tools.parse('<tool_call>{"name": "sh", "arguments": {}}</tool_call>').status
        <ToolStatus.UNKNOWN_TOOL: 'unknown_tool'>
    """

    def __init__(self, tools: Iterable[Tool], *, fenced: Fences | None = None,
                 max_calls: int = MAX_CALLS, error_chars: int = ERROR_CHARS) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            if check_tool_name(t.name) in self._tools:
                raise ValueError(f"two tools are named {t.name!r}; tool names must be unique")
            self._tools[t.name] = t
        self.fenced = fenced
        self.max_calls = max_calls
        self.error_chars = error_chars
        self.counts: Counter[ToolStatus] = Counter()

    def __getitem__(self, name: str) -> Tool:
        return self._tools[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def schemas(self) -> list[dict[str, object]]:
        """The OpenAI function schemas of all tools, for ``apply_chat_template(tools=...)``."""
        return [t.to_schema() for t in self._tools.values()]

    def parse(self, action: Action) -> ParsedCalls:
        """Parse and validate the calls of ``action`` (text, or a message with ``tool_calls``);
        never raises.

        See :func:`~toolgym.tools.parsing.try_parse_action`; a message with more
        than ``max_calls`` calls is a parse error.
        """
        parsed = try_parse_action(action, self, fenced=self.fenced)
        if len(parsed.calls) > self.max_calls:
            error = ParseError(
                f"This message makes {len(parsed.calls)} tool calls; at most {self.max_calls} "
                "are allowed in one message, so none of them ran. Make fewer calls at a time.")
            return dataclasses.replace(parsed, calls=[], error=error)
        return parsed

    def refuse(self, parsed: ParsedCalls) -> ToolOutcome:
        """The counted observation for a message whose calls could not be used (none ran)."""
        assert parsed.error is not None, "refuse() is for a message that failed to parse"
        return self._count(ToolOutcome(None, str(parsed.error), parsed.status))

    async def dispatch(self, context: ToolContext, call: ToolCall) -> ToolOutcome:
        """Run one call in the episode of ``context`` and return its observation; never raises
        for the agent's mistakes.

        Raises:
            SandboxError: the sandbox failed (infrastructure, not the agent).
        """
        start = time.monotonic()
        try:
            checked = check_call(call, self)
            result = await self._tools[call.name].run(context, **checked.arguments)
        except SandboxError:
            raise
        except ToolCallError as exc:
            return self._count(ToolOutcome(call, str(exc), error_status(exc),
                                           duration_s=time.monotonic() - start))
        except Exception as exc:  # noqa: BLE001 - a tool's failure is the agent's observation
            log.warning("tool %r raised on %r", call.name, call.arguments, exc_info=True)
            text = f"Error: the tool `{call.name}` failed: {type(exc).__name__}: {exc}"
            return self._count(ToolOutcome(call, text, ToolStatus.TOOL_ERROR,
                                           duration_s=time.monotonic() - start))
        return self._count(ToolOutcome(call, result.text, result.status, result.truncated,
                                       time.monotonic() - start))

    async def dispatch_text(self, context: ToolContext, text: str) -> list[ToolOutcome]:
        """Parse ``text`` and run its calls one after another, in order.

        Returns:
            One outcome per call; a single ``call=None`` outcome carrying the
            error observation when the text could not be parsed (then nothing
            ran); an empty list when the text has no calls (a final answer).

        Raises:
            SandboxError: the sandbox failed.
        """
        return await self.dispatch_parsed(context, self.parse(text))

    async def dispatch_parsed(self, context: ToolContext, parsed: ParsedCalls
                              ) -> list[ToolOutcome]:
        """Run the calls :meth:`parse` read from a message, as :meth:`dispatch_text` does.

        For a caller that reads the parse first (an env deciding whether a
        message is a final answer, or noting the form its calls came in).

        Raises:
            SandboxError: the sandbox failed.
        """
        if parsed.error is not None:
            return [self.refuse(parsed)]
        return [await self.dispatch(context, call) for call in parsed.calls]

    def _count(self, outcome: ToolOutcome) -> ToolOutcome:
        """Count ``outcome`` and cap its text if it is an error: every outcome passes here."""
        self.counts[outcome.status] += 1
        if outcome.ok or len(outcome.text) <= self.error_chars:
            return outcome
        return dataclasses.replace(outcome, text=output.cap(outcome.text, self.error_chars),
                                   truncated=True)

    def __repr__(self) -> str:
        return f"ToolSet({', '.join(t.signature for t in self._tools.values())})"
