"""Seeded arithmetic tasks for the calculator environment.

Each task asks for the value of an arithmetic expression that a small model
cannot work out in its head but can get from the ``calc`` tool. The answer is
always a non-zero integer (divisions are exact), and never equal to a number
shown in the prompt, so echoing the question never scores. Six kinds, mixed by
:data:`DEFAULT_MIX`:

========  ======================================  =====================================
kind      prompt                                  the oracle
========  ======================================  =====================================
expr1     ``What is 47 * 29?`` (2 × 2 digits)     one call, the expression copied
expr2     ``What is 347 * 29?``, ``8463 / 91``    one call, the expression copied
expr3     ``What is 347 * 29 + 512?``             one call, the expression copied
expr4     ``What is (34 + 29) * (51 - 12)?``      one call, the expression copied
words     ``What is 347 times 29?``               one call; words become ``*`` etc.
chain     ``Compute 347 * 29, then subtract 85.`` two calls: ``347 * 29``, then
                                                  ``10063 - 85`` with the first result
========  ======================================  =====================================

The main distribution (80 %) is the copy-the-expression case, which a tiny
model learns quickly; ``words`` (10 %) asks it to translate operators and
``chain`` (10 %) to use the tool twice, copying a tool result into the second
call. Those are the decisions RL can still improve once SFT has taught the
format. Pass ``mix`` to change the proportions (e.g. ``{"expr1": 1}``).

Splits are disjoint by construction: a task's split is a hash of its numbers
and answer (not of the seed), so a test expression (or the same numbers in
another order or wording) is never in train, for any seed or size. Task lists
are prefix-stable: ``n_train=100`` gives the first 100 tasks of ``n_train=2400``.

``Task.data`` holds, for the verifier only: ``expression`` (one expression whose
value is the answer), ``answer`` (that value, an int) and ``steps`` (the
expressions the oracle sends to ``calc``, in order).
"""

from __future__ import annotations

import difflib
import hashlib
import operator
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache

from toolgym.envs.tasks import ListTaskSource, Task
from toolgym.errors import ConfigError

__all__ = [
    "DEFAULT_MIX",
    "KINDS",
    "TEST_FRACTION",
    "calc_tasks",
]

DEFAULT_MIX: Mapping[str, float] = {
    "expr1": 0.20, "expr2": 0.25, "expr3": 0.20, "expr4": 0.15, "words": 0.10, "chain": 0.10,
}
"""How often each kind of task is drawn."""
TEST_FRACTION = 0.2
"""Share of distinct (numbers, answer) keys that belong to the test split."""

_OPS: dict[str, Callable[[int, int], int]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.floordiv,
}
_WORDS = {"+": "plus", "-": "minus", "*": "times", "/": "divided by"}
_CHAIN_VERBS = {"+": "add", "-": "subtract", "*": "multiply by"}


@dataclass(frozen=True)
class _Draft:
    """A task before it has an id and a split."""

    prompt: str
    expression: str
    answer: int
    numbers: tuple[int, ...]
    steps: tuple[str, ...]
    kind: str
    level: int


def _binary(rng: random.Random, level: int, ops: str) -> tuple[int, str, int]:
    """``a op b``: a has ``level + 1`` digits, b two; for ``/``, a = b * q (exact)."""
    op = rng.choice(ops)
    if op == "/":
        b = rng.randint(2, 9) if level == 1 else _digits(rng, 2)
        return b * (_digits(rng, 2) if level == 1 else rng.randint(10, 999)), op, b
    return _digits(rng, level + 1), op, _digits(rng, 2)


def _digits(rng: random.Random, n: int) -> int:
    return rng.randint(10 ** (n - 1), 10**n - 1)


def _value(a: int, op: str, b: int) -> int:
    return _OPS[op](a, b)


def _expr(rng: random.Random, level: int) -> _Draft:
    if level in (1, 2):
        a, op, b = _binary(rng, level, "+-*/")
        expression = f"{a} {op} {b}"
        return _Draft(f"What is {expression}?", expression, _value(a, op, b), (a, b),
                      (expression,), f"expr{level}", level)
    if level == 3:
        a, b, c = _digits(rng, 3), _digits(rng, 2), _digits(rng, rng.choice((2, 3)))
        op1, op2 = rng.choice("+-*"), rng.choice("+-*")
        expression = f"{a} {op1} {b} {op2} {c}"
        # Precedence: * binds first; evaluate with Python's own int arithmetic.
        value = _precedence(a, op1, b, op2, c)
        return _Draft(f"What is {expression}?", expression, value, (a, b, c),
                      (expression,), "expr3", 3)
    a, b, c, d = (_digits(rng, 2) for _ in range(4))
    op1, op2, op3 = rng.choice("+-"), rng.choice("+-*"), rng.choice("+-*")
    expression = f"({a} {op1} {b}) {op2} ({c} {op3} {d})"
    value = _value(_value(a, op1, b), op2, _value(c, op3, d))
    return _Draft(f"What is {expression}?", expression, value, (a, b, c, d),
                  (expression,), "expr4", 4)


def _precedence(a: int, op1: str, b: int, op2: str, c: int) -> int:
    if op2 == "*" and op1 != "*":
        return _value(a, op1, b * c)
    return _value(_value(a, op1, b), op2, c)


def _words(rng: random.Random) -> _Draft:
    a, op, b = _binary(rng, 2, "+-*/")
    expression = f"{a} {op} {b}"
    return _Draft(f"What is {a} {_WORDS[op]} {b}?", expression, _value(a, op, b), (a, b),
                  (expression,), "words", 2)


def _chain(rng: random.Random) -> _Draft:
    a, op, b = _binary(rng, 2, "+-*")
    first = _value(a, op, b)
    op2 = rng.choice("+-*")
    x = rng.randint(2, 9) if op2 == "*" else _digits(rng, rng.choice((2, 3)))
    value = _value(first, op2, x)
    return _Draft(f"Compute {a} {op} {b}, then {_CHAIN_VERBS[op2]} {x}.",
                  f"({a} {op} {b}) {op2} {x}", value, (a, b, x),
                  (f"{a} {op} {b}", f"{first} {op2} {x}"), "chain", 3)


_MAKERS: dict[str, Callable[[random.Random], _Draft]] = {
    "expr1": lambda rng: _expr(rng, 1),
    "expr2": lambda rng: _expr(rng, 2),
    "expr3": lambda rng: _expr(rng, 3),
    "expr4": lambda rng: _expr(rng, 4),
    "words": _words,
    "chain": _chain,
}
KINDS = tuple(_MAKERS)
"""The kinds of task, in the order of the table above."""


def split_of(numbers: tuple[int, ...], answer: int) -> str:
    """``"test"`` or ``"train"``, from a hash of the sorted numbers and the answer.

    Example:
        >>> split_of((347, 29), 10063) == split_of((29, 347), 10063)
        True
    """
    key = f"{sorted(numbers)}={answer}".encode()
    bucket = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64
    return "test" if bucket < TEST_FRACTION else "train"


def calc_tasks(
    seed: int = 0, n_train: int = 2400, n_test: int = 600, mix: Mapping[str, float] | None = None
) -> ListTaskSource:
    """Return ``n_train`` + ``n_test`` arithmetic tasks, identical for identical arguments.

    Args:
        seed: Seeds the draw of numbers and operators.
        n_train: Tasks in split ``"train"`` (ids ``calc-train-0000``…).
        n_test: Tasks in split ``"test"`` (ids ``calc-test-0000``…).
        mix: Weight of each kind (see the module docstring); default :data:`DEFAULT_MIX`.

    Raises:
        ConfigError: An unknown kind, no positive weight, or a negative size.

    Example:
        >>> source = calc_tasks(n_train=20, n_test=5)
        >>> len(source.split("train")), len(source.split("test"))
        (20, 5)
        >>> source.get("calc-train-0003") == calc_tasks().get("calc-train-0003")  # prefix-stable
        True
    """
    mix = dict(DEFAULT_MIX if mix is None else mix)
    for kind in mix:
        if kind not in _MAKERS:
            close = difflib.get_close_matches(kind, KINDS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"Unknown calc task kind {kind!r}.{hint} Kinds: {list(KINDS)}.")
    if not any(w > 0 for w in mix.values()) or any(w < 0 for w in mix.values()):
        raise ConfigError(f"calc task mix needs non-negative weights, one of them > 0; got {mix}.")
    if n_train < 0 or n_test < 0:
        raise ConfigError(f"n_train and n_test must be >= 0; got {n_train}, {n_test}.")
    return ListTaskSource(_generate(seed, n_train, n_test, tuple(sorted(mix.items()))))


@cache
def _generate(
    seed: int, n_train: int, n_test: int, mix: tuple[tuple[str, float], ...]
) -> tuple[Task, ...]:
    rng = random.Random(seed)
    kinds, weights = zip(*mix, strict=True)
    wanted = {"train": n_train, "test": n_test}
    chosen: dict[str, list[_Draft]] = {"train": [], "test": []}
    seen: set[str] = set()
    attempts = 0
    while any(len(chosen[s]) < wanted[s] for s in chosen):
        attempts += 1
        if attempts > 50 * (n_train + n_test) + 1000:
            raise ConfigError(
                f"Could not draw {n_train} train and {n_test} test distinct tasks from mix "
                f"{dict(mix)}; ask for fewer tasks or add kinds with more possible tasks.")
        draft = _MAKERS[rng.choices(kinds, weights)[0]](rng)
        split = split_of(draft.numbers, draft.answer)
        if (draft.answer == 0 or draft.answer in draft.numbers or draft.prompt in seen
                or len(chosen[split]) >= wanted[split]):
            continue
        seen.add(draft.prompt)
        chosen[split].append(draft)
    return tuple(_task(draft, split, i)
                 for split in ("train", "test") for i, draft in enumerate(chosen[split]))


def _task(draft: _Draft, split: str, index: int) -> Task:
    return Task(
        id=f"calc-{split}-{index:04d}",
        prompt=draft.prompt,
        data={"expression": draft.expression, "answer": draft.answer, "steps": list(draft.steps)},
        split=split,
        metadata={"kind": draft.kind, "level": draft.level},
    )
