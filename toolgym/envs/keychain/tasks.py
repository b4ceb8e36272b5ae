"""KeyChain tasks: a hidden table of keys, a chain through it, and the pure lookup rule.

A task hides a table over the keys ``a``-``h``. From the start key, ``depth``
lookups lead through distinct keys to a digit, the answer::

    a -> d,  d -> b,  b -> 7          (start a, depth 3, answer 7)

The other keys are *distractors*: each points to another key or to a digit
that is not the answer, so a lookup of the wrong key shows something that
looks like progress and leads elsewhere. That is what makes credit matter:
one wrong turn early spoils an episode whose later turns were all correct.

    >>> task = keychain_tasks(n_train=4, n_test=2).get("kc-train-0000")
    >>> task.prompt
    'start: g'
    >>> chain_actions(task)
    ['g', 'h', 'd']
"""

from __future__ import annotations

import random
import re

from toolgym.envs.tasks import ListTaskSource, Task
from toolgym.errors import ConfigError
from toolgym.tools import ToolTask

__all__ = ["KEYS", "answer_of", "chain_actions", "keychain_tasks", "lookup", "make_task"]

KEYS = "abcdefgh"
"""The keys a table has; every one is present in every table."""
_LAST_NUMBER = re.compile(r"\d+")


def make_task(task_id: str, rng: random.Random, *, depth: int = 3, split: str = "train") -> Task:
    """One task: a chain of ``depth`` distinct keys ending in a digit, distractors elsewhere.

    Raises:
        ConfigError: ``depth`` is not between 1 and ``len(KEYS)``.
    """
    if not 1 <= depth <= len(KEYS):
        raise ConfigError(f"depth must be between 1 and {len(KEYS)}; got {depth}.")
    chain = rng.sample(KEYS, depth)
    answer = rng.randrange(10)
    table = {k: nxt for k, nxt in zip(chain, chain[1:], strict=False)}
    table[chain[-1]] = str(answer)
    for key in KEYS:
        if key not in table:
            if rng.random() < 0.5:
                table[key] = rng.choice([k for k in KEYS if k != key])
            else:
                table[key] = str(rng.choice([d for d in range(10) if d != answer]))
    return Task(id=task_id, prompt=f"start: {chain[0]}", split=split,
                data={"table": table, "start": chain[0], "answer": str(answer), "depth": depth})


def keychain_tasks(seed: int = 0, n_train: int = 2000, n_test: int = 500, *,
                   depth: int = 3) -> ListTaskSource:
    """``n_train`` + ``n_test`` tasks, deterministic in ``seed``; ids ``kc-{split}-{i:04d}``."""
    rng = random.Random(seed)
    tasks = [make_task(f"kc-train-{i:04d}", rng, depth=depth) for i in range(n_train)]
    tasks += [make_task(f"kc-test-{i:04d}", rng, depth=depth, split="test")
              for i in range(n_test)]
    return ListTaskSource(tasks)


def lookup(task: ToolTask, key: str) -> tuple[str, bool]:
    """What the ``get`` tool shows for ``key``: ``("a -> d", ok)``; unknown keys are errors."""
    table = task.data["table"]
    if key not in table:
        return f"Error: no key {key!r}; keys are {', '.join(KEYS)}.", False
    return f"{key} -> {table[key]}", True


def chain_actions(task: Task) -> list[str]:
    """The keys the oracle looks up, in order."""
    table, key, keys = task.data["table"], task.data["start"], []
    while not table[key].isdigit():
        keys.append(key)
        key = table[key]
    return [*keys, key]


def answer_of(text: str) -> str | None:
    """The answer a final message gives: its last run of digits (None if it has none)."""
    found = _LAST_NUMBER.findall(text)
    return found[-1] if found else None
