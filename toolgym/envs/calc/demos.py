"""Scripted episodes of the calculator environment: the oracle, and imperfect SFT demonstrations.

The oracle calls ``calc`` once per step of the task (twice for ``chain``
tasks, copying the first result into the second call) and then replies with
the number alone. Its observations are computed on the host with the same
evaluator the sandbox runs, so whole transcripts can be made without Docker
(:func:`simulate`); the env tests check that they match the sandbox's.

RL improves decisions the policy already gets right some of the time, so SFT
on perfect demonstrations would leave GRPO little to do (every group all
successes). :func:`demonstration` therefore makes *imperfect* demonstrations,
with three kinds of mistake a small model plausibly makes:

- ``guess`` (probability ``p_guess``): no tool call; ``About N`` with a
  plausible wrong ``N``. The fixed first word makes skipping the tool *one*
  early decision (the first token) that RL can flip, instead of a choice
  spread thinly over every number token, which greedy decoding never takes;
- ``mistype`` (``p_mistype``): one number of the last call is mistyped, and the
  reply repeats what the tool said (wrong);
- ``miscopy`` (``p_miscopy``): the calls are right, the reply copies the tool's
  result wrongly (a digit changed, two digits swapped, off by one or ten).

The rest (by default 60 %) are oracle episodes. ``Demo.correct`` says which
demos score 1, so the expected success of SFT data is known.

Example:
    >>> import random
    >>> from toolgym.envs.calc.tasks import calc_tasks
    >>> task = calc_tasks().get("calc-train-0002")
    >>> task.prompt, oracle_actions(task)[-1]
    ('What is 243 * 22?', '5346')
    >>> demo = demonstration(task, random.Random(0), p_guess=1.0, p_mistype=0, p_miscopy=0)
    >>> demo.mode, demo.correct, len(demo.messages)
    ('guess', False, 3)
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

from toolgym.envs.calc.evaluator import calculate, format_value
from toolgym.envs.calc.prompts import SYSTEM_PROMPT
from toolgym.envs.calc.tool import calc_tool
from toolgym.envs.calc.verifier import expected_value, last_number, parse_number
from toolgym.envs.tasks import Task
from toolgym.errors import ConfigError
from toolgym.tools import ToolCall, ToolSet, render_tool_call

Message = dict[str, Any]
_TOOLS = ToolSet([calc_tool()])
_NUMBER = re.compile(r"\d+")


def call(expression: str) -> str:
    """The assistant message that calls ``calc`` on ``expression`` (Hermes format).

    Example:
        >>> print(call("347 * 29"))
        <tool_call>
        {"name": "calc", "arguments": {"expression": "347 * 29"}}
        </tool_call>
    """
    return render_tool_call(ToolCall("calc", {"expression": expression}))


def oracle_actions(task: Task) -> list[str]:
    """One ``calc`` call per step of the task, then the exact value alone."""
    return [call(step) for step in task.data["steps"]] + [format_value(expected_value(task))]


def wrong_actions(task: Task) -> list[str]:
    """A reply without the tool that is off by one: plausible, and always scored 0."""
    return [str(int(expected_value(task)) + 1)]


def near_miss(value: int, rng: random.Random) -> int:
    """A plausible wrong copy of ``value``: one digit changed, two swapped, or ±1 / ±10;
    never of the opposite sign.

    Example:
        >>> near_miss(10063, random.Random(0)) != 10063
        True
    """
    digits = list(str(abs(value)))
    while True:
        how = rng.randrange(4)
        if how == 0:
            i = rng.randrange(len(digits))
            low = 1 if i == 0 and len(digits) > 1 else 0
            changed = digits[:i] + [str(rng.randint(low, 9))] + digits[i + 1:]
            candidate = int("".join(changed))
        elif how == 1 and len(digits) > 1:
            i = rng.randrange(len(digits) - 1)
            swapped = digits[:i] + [digits[i + 1], digits[i]] + digits[i + 2:]
            candidate = int("".join(swapped)) if swapped[0] != "0" else abs(value) + 1
        else:
            candidate = abs(value) + rng.choice((1, -1)) * (1 if how == 2 else 10)
        candidate = -candidate if value < 0 else candidate
        if candidate != value and candidate * value >= 0:
            return candidate


def simulate(task: Task, actions: Iterable[str], *, system_prompt: str | None = SYSTEM_PROMPT,
             ) -> list[Message]:
    """The messages an episode with these actions produces, with tool results computed here.

    Tool messages carry the text the sandbox's ``calc`` prints (time limits
    aside), malformed calls the env's error text. Actions after the first
    reply without a call (the final answer) are ignored.
    """
    messages: list[Message] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    messages.append({"role": "user", "content": task.prompt})
    for action in actions:
        messages.append({"role": "assistant", "content": action})
        parsed = _TOOLS.parse(action)
        if parsed.ok and not parsed.calls:
            break
        if parsed.error is not None:
            messages.append({"role": "tool", "name": "error", "content": str(parsed.error)})
            continue
        for c in parsed.calls:
            result = calculate(c.arguments["expression"])
            messages.append({"role": "tool", "name": "calc", "content": result})
    return messages


@dataclass(frozen=True)
class Demo:
    """One demonstration: its messages (system, user, assistant and tool turns) and what it is."""

    messages: list[Message]
    mode: str
    """``oracle``, ``guess``, ``mistype`` or ``miscopy``."""
    correct: bool
    """Whether the final reply scores 1 (a mistake can be harmless by chance)."""

    @property
    def actions(self) -> list[str]:
        """The assistant messages, in order."""
        return [m["content"] for m in self.messages if m["role"] == "assistant"]


def demonstration(task: Task, rng: random.Random, *, p_guess: float = 0.2,
                  p_mistype: float = 0.1, p_miscopy: float = 0.1,
                  system_prompt: str | None = SYSTEM_PROMPT) -> Demo:
    """An SFT demonstration of ``task``: an oracle episode, or with probability
    ``p_guess + p_mistype + p_miscopy`` one with a mistake (see the module docstring).

    Args:
        task: A calculator task.
        rng: Picks the mode and the mistake; seed it for reproducible data.
        p_guess: Chance of answering without the tool, wrongly.
        p_mistype: Chance of mistyping a number of the last call.
        p_miscopy: Chance of copying the tool's result wrongly into the reply.
        system_prompt: First message, or None for none.

    Raises:
        ConfigError: a probability is negative or they sum to more than 1.
    """
    probs = {"guess": p_guess, "mistype": p_mistype, "miscopy": p_miscopy}
    if any(p < 0 for p in probs.values()) or sum(probs.values()) > 1:
        raise ConfigError(f"demonstration probabilities must be >= 0 and sum to <= 1; got {probs}")
    draw, mode = rng.random(), "oracle"
    for name, p in probs.items():
        if draw < p:
            mode = name
            break
        draw -= p
    expected = int(expected_value(task))
    steps = list(task.data["steps"])
    if mode == "guess":
        actions = [f"About {near_miss(expected, rng)}"]
    else:
        if mode == "mistype":
            steps[-1] = _mistype(steps[-1], rng)
        calls = [call(s) for s in steps]
        said = simulate(task, calls, system_prompt=None)[-1]["content"]
        if mode == "miscopy":
            said = str(near_miss(int(said), rng))
        actions = [*calls, said]
    messages = simulate(task, actions, system_prompt=system_prompt)
    written = last_number(actions[-1])
    correct = written is not None and parse_number(written) == expected
    return Demo(messages, mode, correct)


def _mistype(expression: str, rng: random.Random) -> str:
    """``expression`` with one of its numbers replaced by a near miss (kept valid)."""
    spans = [m.span() for m in _NUMBER.finditer(expression)]
    start, end = rng.choice(spans)
    wrong = near_miss(int(expression[start:end]), rng)
    if wrong <= 0:
        wrong = int(expression[start:end]) + 1
    return f"{expression[:start]}{wrong}{expression[end:]}"


class MistakeRates(TypedDict, total=False):
    """The mistake probabilities of :func:`demonstration`."""

    p_guess: float
    p_mistype: float
    p_miscopy: float


def demonstrations(tasks: Iterable[Task], *, seed: int = 0,
                   **probabilities: Unpack[MistakeRates]) -> list[Demo]:
    """:func:`demonstration` for each task, with one generator seeded by ``seed``."""
    rng = random.Random(seed)
    return [demonstration(task, rng, **probabilities) for task in tasks]
