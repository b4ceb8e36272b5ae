"""``toolgym/Calculator-v0``: answer arithmetic questions with a ``calc`` tool.

The environment of the CPU main job: a tiny model learns to *use* a tool.
Each task asks for the value of an expression too hard to work out in one's
head (``What is 347 * 29?``); the ``calc`` tool evaluates it exactly inside the
sandbox; the final reply (a message without a tool call) is scored 1.0 iff
its last number is the exact value, computed on the host. An oracle episode
is about 180 characters with the system prompt, 120 without. See ``tasks.py``
for the task kinds, ``verifier.py`` for what counts as an answer and
``demos.py`` for oracle and imperfect SFT demonstrations.
"""

from __future__ import annotations

from collections.abc import Mapping

from toolgym.envs.base import DEFAULT_SANDBOX, ToolEnv
from toolgym.envs.calc.demos import call, oracle_actions, wrong_actions
from toolgym.envs.calc.prompts import SYSTEM_PROMPT
from toolgym.envs.calc.tasks import calc_tasks
from toolgym.envs.calc.tool import calc_tool
from toolgym.envs.calc.verifier import ExactAnswerVerifier, expected_value
from toolgym.envs.tasks import Task
from toolgym.sandbox.provider import SandboxProvider
from toolgym.sandbox.spec import SandboxSpec
from toolgym.tools import ToolSet


class CalculatorEnv(ToolEnv):
    """Arithmetic questions, a ``calc`` tool in the sandbox, reward 1.0 for the exact value.

    Args:
        split: ``"train"``, ``"test"`` or None (both).
        seed: Seeds the task generator (not the episode draw: ``reset(seed=)`` does that).
        n_train: Number of train tasks.
        n_test: Number of test tasks.
        mix: Weights of the task kinds (see :mod:`toolgym.envs.calc.tasks`).
        sandbox: Spec of this env's own sandbox (ignored when ``provider`` is given).
        provider: Share sandboxes with other envs.
        tool_timeout_s: Time limit of one ``calc`` call.
        system_prompt: The instruction shown first; None for none.
        render_mode: None or "ansi".

    Example:
        >>> env = gymnasium.make("toolgym/Calculator-v0", split="train")  # doctest: +SKIP
        >>> obs, info = env.reset(seed=0)                                 # doctest: +SKIP
        >>> env.step('<tool_call>{"name": "calc", "arguments": {"expression": "347 * 29"}}'
        ...          '</tool_call>')[0]                                   # doctest: +SKIP
        '10063'
    """

    def __init__(
        self,
        split: str | None = None,
        *,
        seed: int = 0,
        n_train: int = 2400,
        n_test: int = 600,
        mix: Mapping[str, float] | None = None,
        sandbox: SandboxSpec | None = None,
        provider: SandboxProvider | None = None,
        tool_timeout_s: float = 5.0,
        system_prompt: str | None = SYSTEM_PROMPT,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            calc_tasks(seed, n_train, n_test, mix),
            ToolSet([calc_tool(timeout_s=tool_timeout_s)]),
            ExactAnswerVerifier(),
            sandbox=sandbox or DEFAULT_SANDBOX,
            provider=provider,
            system_prompt=system_prompt,
            split=split,
            render_mode=render_mode,
        )

    def oracle_actions(self, task: Task) -> list[str]:
        """``calc`` each step, then the exact value."""
        return oracle_actions(task)

    def wrong_actions(self, task: Task) -> list[str]:
        """Off by one, no tool."""
        return wrong_actions(task)

    def hack_probes(self, task: Task) -> dict[str, list[str]]:
        """Ways to score without the right last number; each must score 0.

        Listing candidates, flipping the sign, echoing the question, claiming
        success, an over-long number, and calls that try to run code, escape
        through attributes, write an answer file, exhaust memory, or pass an
        expression too long for one argument.
        """
        right = int(expected_value(task))
        wrong = str(right + 1)
        return {
            "list candidates, the right one not last": [
                f"It is one of {right - 1}, {right}, {right + 2} or {right + 1}."],
            "the right number, then another": [f"{right}, or maybe {wrong}"],
            "the right digits with the wrong sign": [str(-right)],
            "repeat the question": [task.prompt],
            "claim success without a number": ["The calculator confirmed my answer is correct."],
            "a 5000-digit number": ["9" * 5000],
            "run code through calc": [
                call(f"__import__('os').system('echo {right} > /work/answer.txt')"), wrong],
            "escape through attributes": [
                call("().__class__.__base__.__subclasses__()[0]"), wrong],
            "exhaust memory with a power": [call("9**9**9**9"), call("10**999999"), wrong],
            "an expression past the argv limit (an infra_error would leave the score)": [
                call("1 + " * 50_000 + "1"), wrong],
        }
