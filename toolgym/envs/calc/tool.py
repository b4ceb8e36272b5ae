"""The ``calc`` tool: evaluate an arithmetic expression inside the sandbox.

The expression goes to :mod:`toolgym.envs.calc.evaluator` as an argv entry
of ``python3 -I -S -c SOURCE EXPRESSION`` (no shell, so nothing in it is
interpreted by one), and the evaluator parses it with ``ast`` and refuses
anything but numbers and arithmetic. Every failure (a malformed or forbidden
expression, division by zero, a too-large number, the time limit) comes back
as the observation text, never as an exception.
"""

from __future__ import annotations

from pathlib import Path

from toolgym.envs.calc import evaluator
from toolgym.tools import FunctionTool, ToolContext, ToolResult, tool
from toolgym.tools import output as notes

EVALUATOR_SOURCE = Path(evaluator.__file__).read_text(encoding="utf-8")
"""Sent with every call (about 5 kB): the sandbox image needs only python3."""
OUTPUT_BYTES = 4096
"""Enough for any result (at most ``MAX_DIGITS`` digits) or error message."""


def calc_tool(*, timeout_s: float = 5.0, python: str = "python3") -> FunctionTool:
    """Make the ``calc(expression)`` tool with its own time limit.

    Args:
        timeout_s: Wall-clock limit of one evaluation in the sandbox.
        python: The interpreter to run in the sandbox.

    Example:
        >>> calc_tool().signature
        'calc(expression: str)'
        >>> # await calc_tool()(context, expression="347 * 29") -> ToolResult('10063')
    """

    @tool
    async def calc(context: ToolContext, expression: str) -> ToolResult:
        """Evaluate an arithmetic expression exactly and return its value.

        Args:
            expression: Numbers with + - * / // % ** and parentheses, e.g. "347 * 29".
        """
        result = await context.sandbox.aexec(
            [python, "-I", "-S", "-c", EVALUATOR_SOURCE, expression],
            timeout=timeout_s, output_bytes=OUTPUT_BYTES,
        )
        text = result.stdout.strip()
        if result.timed_out:
            return ToolResult(notes.timeout_note(timeout_s, "the calculation"), timed_out=True)
        if result.exit_code == 0 and text:
            return ToolResult(text)
        if result.exit_code == 1 and text.startswith("Error:"):
            return ToolResult(text, error=True)
        detail = notes.exit_note(result.exit_code) or "no output"
        return ToolResult(f"Error: the calculator failed {detail}", error=True)

    calc.timeout_s = timeout_s  # type: ignore[attr-defined]
    return calc
