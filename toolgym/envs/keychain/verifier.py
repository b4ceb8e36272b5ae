"""KeyChain-v0's reward: 1.0 iff the final message's last number is the chain's digit."""

from __future__ import annotations

from toolgym.envs.keychain.tasks import answer_of
from toolgym.envs.outcome import Score
from toolgym.envs.tasks import Task
from toolgym.sandbox.base import Sandbox

__all__ = ["DigitVerifier"]


class DigitVerifier:
    """Scores the answer text on the host; there is no sandbox to look at.

    Example:
        >>> import asyncio
        >>> task = Task("t", "start: a", data={"answer": "7"})
        >>> asyncio.run(DigitVerifier().score(None, task, "3 then 7")).details
        {'answer': '7', 'expected': '7'}
    """

    needs_sandbox = False

    async def score(self, sandbox: Sandbox | None, task: Task, answer: str) -> Score:
        """Reward 1.0 iff :func:`~toolgym.envs.keychain.tasks.answer_of` ``answer`` is the digit."""
        given = answer_of(answer)
        passed = given == task.data["answer"]
        return Score(1.0 if passed else 0.0, passed,
                     {"answer": given, "expected": task.data["answer"]})
