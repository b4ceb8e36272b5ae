"""Exact-answer verification for the calculator environment, computed on the host.

The rule: **the last number in the final message is the answer**, and it
scores 1.0 iff it equals the task's value exactly. Nothing from the sandbox is
trusted: the expected value comes from evaluating the task's expression with
:mod:`toolgym.envs.calc.evaluator` in this process (and must agree with the
answer the generator stored, else the verifier raises, which the env reports
as an infrastructure error instead of a score).

Why the last number: a reply may show its work ("347 * 29 = 10063") and still
be read unambiguously, while listing candidates cannot be gamed: only the
last one counts ("10062, 10063 or 10064" is read as 10064). The answer must
therefore come last; "10063 (from 347 * 29)" is read as 29.

What counts as a number:

- an optional ``-`` directly before the digits is a sign when it does not
  follow a digit, letter, ``.`` or ``)`` (``"-5"``, ``"is -5"``, ``"(-5)"``
  are negative; in ``"347-29"`` the last number is ``29``);
- thousands separators in groups of three are accepted: ``"10,063"`` is 10063;
- a trailing sentence period is not part of the number: ``"10063."``;
- a decimal equal to the value is accepted: ``"10063.0"`` (values are
  compared exactly, as fractions); exponents (``1e4``), spelled-out numbers
  and ``+`` signs are not numbers (``+5`` reads as 5);
- a number longer than :data:`MAX_ANSWER_DIGITS` digits is no answer at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from toolgym.envs.calc.evaluator import evaluate, format_value
from toolgym.envs.outcome import Score
from toolgym.envs.tasks import Task
from toolgym.sandbox.base import Sandbox

MAX_ANSWER_DIGITS = 120
"""Longer numbers are not read (Python refuses int() of more than 4300 digits)."""
NUMBER = re.compile(r"(?<![\w.)])(-?)(\d{1,3}(?:,\d{3})+(?!\d)|\d+)(\.\d+)?")


def last_number(text: str) -> str | None:
    """The last number written in ``text``, as written (separators and sign kept).

    Example:
        >>> last_number("347 * 29 = 10,063.")
        '10,063'
        >>> last_number("It is -5"), last_number("347-29"), last_number("no digits")
        ('-5', '29', None)
    """
    found = NUMBER.findall(text)
    return "".join(found[-1]) if found else None


def parse_number(written: str) -> Fraction | None:
    """The exact value of a number :func:`last_number` found; None when too long.

    Example:
        >>> parse_number("-10,063.50")
        Fraction(-20127, 2)
    """
    plain = written.replace(",", "")
    if sum(c.isdigit() for c in plain) > MAX_ANSWER_DIGITS:
        return None
    return Fraction(plain)


def expected_value(task: Task) -> Fraction:
    """The exact value of ``task``'s expression, computed here on the host.

    Raises:
        ValueError: the expression does not evaluate, or disagrees with the
            stored ``answer`` (a broken task must not be scored).
    """
    value = evaluate(task.data["expression"])
    stored = task.data.get("answer")
    if stored is not None and Fraction(stored) != value:
        raise ValueError(f"task {task.id}: stored answer {stored} != value {format_value(value)} "
                         f"of {task.data['expression']!r}")
    return value


@dataclass(frozen=True)
class ExactAnswerVerifier:
    """Reward 1.0 iff the last number of the answer equals the task's exact value.

    Example:
        >>> import asyncio
        >>> task = Task("t", "What is 347 * 29?", data={"expression": "347 * 29"})
        >>> asyncio.run(ExactAnswerVerifier().score(None, task, "It is 10,063.")).reward
        1.0
    """

    needs_sandbox = False
    """Scored on the host from the answer text alone: no sandbox reset before scoring."""

    async def score(self, sandbox: Sandbox | None, task: Task, answer: str) -> Score:
        """Score ``answer``; the sandbox is not used (nothing in it is trusted)."""
        expected = expected_value(task)
        written = last_number(answer)
        got = parse_number(written) if written is not None else None
        passed = got is not None and got == expected
        details: dict[str, Any] = {"expected": format_value(expected),
                                   "got": None if written is None else written[:40]}
        return Score(1.0 if passed else 0.0, passed=passed, details=details)
