"""Scripted KeyChain episodes: the oracle, a wrong agent, and imperfect SFT demonstrations.

Demonstrations are imperfect on purpose (RL improves what the policy already
does right *some* of the time, DESIGN.md): at each lookup, with probability
``p_wrong_key``, the demonstrator asks for a random other key, then carries on
from whatever it was shown; with probability ``p_miscopy`` it answers a digit
other than the one it saw. Transcripts are played on the env's own tools and
verifier (:func:`simulate`), so they are exactly what the env produces.

    >>> import random
    >>> from toolgym.envs.keychain.tasks import keychain_tasks
    >>> task = keychain_tasks(n_train=1, n_test=0).get("kc-train-0000")
    >>> [m["content"] for m in simulate(task, oracle_actions(task))][-2:]
    ['d -> 0', '0']
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from toolgym.envs.base import ToolEnv
from toolgym.envs.keychain.tasks import KEYS, answer_of, chain_actions
from toolgym.envs.keychain.tool import keychain_tools
from toolgym.envs.keychain.verifier import DigitVerifier
from toolgym.envs.tasks import ListTaskSource, Task
from toolgym.tools import Action, ToolCall, render_tool_call

__all__ = ["Demo", "call", "demonstration", "oracle_actions", "simulate", "wrong_actions"]

Message = dict[str, Any]


def call(key: str, *, hermes: bool = False) -> str:
    """The assistant message that looks up ``key``: ``get KEY``, or the Hermes format."""
    return render_tool_call(ToolCall("get", {"key": key})) if hermes else f"get {key}"


def oracle_actions(task: Task) -> list[str]:
    """Follow the chain, then answer the digit."""
    return [call(k) for k in chain_actions(task)] + [task.data["answer"]]


def wrong_actions(task: Task) -> list[str]:
    """Answer at once, without looking anything up, a digit that is not the answer."""
    return [str((int(task.data["answer"]) + 1) % 10)]


def simulate(task: Task, actions: Sequence[Action]) -> list[Message]:
    """The messages an episode with these actions produces (stops at the final answer).

    It plays them on KeyChain-v0's tools and verifier over this one task, with no
    turn budget.
    """
    env = ToolEnv(ListTaskSource([task]), keychain_tools(), DigitVerifier(), sandbox=None)
    env.reset(options={"task_id": task.id})
    for action in actions:
        if env.step(action)[2]:
            break
    return env.messages


@dataclass(frozen=True)
class Demo:
    """One demonstration: its messages and whether its final answer is right."""

    messages: list[Message]
    correct: bool


def demonstration(task: Task, rng: random.Random, *, p_wrong_key: float = 0.15,
                  p_miscopy: float = 0.1, max_turns: int = 5) -> Demo:
    """An imperfect demonstration (see the module docstring), at most ``max_turns`` turns."""
    table, key = task.data["table"], task.data["start"]
    actions: list[str] = []
    seen: str | None = None
    while len(actions) < max_turns - 1:
        if rng.random() < p_wrong_key:
            key = rng.choice([k for k in KEYS if k != key])
        actions.append(call(key))
        seen = table[key]
        if seen.isdigit():
            break
        key = seen
    if seen is not None and seen.isdigit():
        digit = seen
        if rng.random() < p_miscopy:
            digit = str(rng.choice([d for d in range(10) if str(d) != seen]))
        actions.append(digit)
    else:
        actions.append(str(rng.randrange(10)))
    messages = simulate(task, actions)
    final = messages[-1]
    correct = final["role"] == "assistant" and answer_of(final["content"]) == task.data["answer"]
    return Demo(messages, correct)
