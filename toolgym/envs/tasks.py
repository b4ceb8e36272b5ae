"""The task record every environment consumes, and the sources that hand tasks out.

A :class:`Task` splits what the agent may see (``prompt``) from what only the
verifier may see (``data``: tests, reference solution, expected answer), so an
environment can put the prompt in the observation without leaking the answer.

A :class:`TaskSource` is the one interface an environment needs: look a task up
by id (for replays and per-task logs), draw one with a seeded generator (for
training), and cut the source into its ``train`` / ``test`` splits (so that
evaluation never sees training tasks). :class:`ListTaskSource` implements it
over an in-memory list and :class:`JSONLTaskSource` over a JSON-lines file.
"""

from __future__ import annotations

import dataclasses
import difflib
import gzip
import json
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from toolgym.errors import ConfigError, ToolgymError

if TYPE_CHECKING:  # numpy is only needed to name the generator type
    import numpy as np

__all__ = [
    "JSONLTaskSource",
    "ListTaskSource",
    "Task",
    "TaskSource",
    "UnknownTask",
    "write_jsonl",
]


@dataclass(frozen=True)
class Task:
    """One task: what the agent sees, and what only the verifier sees.

    Attributes:
        id: Unique within its source; stable across runs, so logs and replays
            can name the task.
        prompt: The text the agent is shown.
        data: Hidden material for the verifier only (tests, reference
            solution, entry point, expected answer...). Never put it in an
            observation. Sources may share one task between callers, so treat
            it as read-only.
        split: ``"train"`` or ``"test"``. Defaults to ``"test"`` so that a task
            whose split was forgotten is never trained on by accident.
        metadata: Descriptive fields for reports and filtering (difficulty,
            family, origin); neither the agent nor the verifier depends on them.

    Example:
        >>> task = Task(id="add-1", prompt="What is 2 + 3?", data={"answer": 5}, split="train")
        >>> task.data["answer"], task.split
        (5, 'train')
        >>> Task.from_dict(task.to_dict()) == task
        True
    """

    id: str
    prompt: str
    data: Mapping[str, Any] = field(default_factory=dict)
    split: str = "test"
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Validate the id and split, and take private copies of the mappings."""
        if not isinstance(self.id, str) or not self.id:
            raise ConfigError(f"Task id must be a non-empty string, got {self.id!r}.")
        if not isinstance(self.split, str) or not self.split:
            raise ConfigError(f"Task {self.id!r}: split must be a non-empty string.")
        # Own copies, so that mutating the mapping a task was built from cannot
        # change the task afterwards.
        object.__setattr__(self, "data", dict(self.data))
        object.__setattr__(self, "metadata", dict(self.metadata))

    def __hash__(self) -> int:
        """Hash by id and split (the generated hash would try to hash the dicts)."""
        return hash((self.id, self.split))

    def to_dict(self) -> dict[str, Any]:
        """Return the task as plain JSON-ready values (one line of a JSONL file)."""
        return {
            "id": self.id,
            "prompt": self.prompt,
            "data": dict(self.data),
            "split": self.split,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Task:
        """Build a task from :meth:`to_dict`'s output.

        Raises:
            ConfigError: A required key is missing or an unknown key is present
                (a typo such as ``"promt"`` must not pass silently).
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(record) - known)
        if unknown:
            raise ConfigError(f"Unknown task field(s) {unknown}; expected some of {sorted(known)}.")
        missing = [key for key in ("id", "prompt") if key not in record]
        if missing:
            raise ConfigError(f"Task record lacks required field(s) {missing}.")
        return cls(**record)


class UnknownTask(ToolgymError, KeyError):
    """No task with this id exists in the source.

    Attributes:
        task_id: The id that was asked for.
        n_ids: How many ids the source holds.
        suggestions: The closest existing ids (possibly none).
    """

    def __init__(self, task_id: str, n_ids: int, suggestions: list[str]) -> None:
        """Build the message from the id, the source size and the suggestions."""
        self.task_id = task_id
        self.n_ids = n_ids
        self.suggestions = suggestions
        hint = f" Did you mean {', '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        super().__init__(
            f"No task {task_id!r} in this source ({n_ids} ids).{hint} "
            "Call `.ids()` on the source to list them."
        )

    def __str__(self) -> str:
        """Return the message as is (KeyError would otherwise repr() it)."""
        return str(self.args[0])


@runtime_checkable
class TaskSource(Protocol):
    """What an environment needs from a collection of tasks."""

    def __len__(self) -> int:
        """Return the number of tasks."""
        ...

    def __iter__(self) -> Iterator[Task]:
        """Iterate over the tasks in a fixed order."""
        ...

    def ids(self) -> list[str]:
        """Return every task id, in the source's fixed order."""
        ...

    def get(self, task_id: str) -> Task:
        """Return the task with this id; raise :class:`UnknownTask` if none."""
        ...

    def sample(self, rng: np.random.Generator | random.Random) -> Task:
        """Draw one task uniformly with the caller's seeded generator."""
        ...

    def split(self, name: str) -> TaskSource:
        """Return the tasks of one split (``"train"`` or ``"test"``) as a source."""
        ...


class ListTaskSource:
    """A task source over an in-memory sequence of tasks.

    Args:
        tasks: The tasks, in the order :meth:`ids` and iteration report them.

    Raises:
        ConfigError: Two tasks share an id.

    Example:
        >>> source = ListTaskSource([Task("a", "1+1?", split="train"), Task("b", "2+2?")])
        >>> len(source), source.ids(), source.split("test").ids()
        (2, ['a', 'b'], ['b'])
        >>> source.sample(random.Random(0)).id in {"a", "b"}
        True
    """

    def __init__(self, tasks: Iterable[Task]) -> None:
        """Index the tasks by id, refusing duplicates."""
        self._tasks = list(tasks)
        self._by_id: dict[str, Task] = {}
        for task in self._tasks:
            if task.id in self._by_id:
                raise ConfigError(f"Duplicate task id {task.id!r}; ids must be unique per source.")
            self._by_id[task.id] = task

    def __len__(self) -> int:
        """Return the number of tasks."""
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        """Iterate over the tasks in their given order."""
        return iter(self._tasks)

    def __repr__(self) -> str:
        """Show the size and the splits, not every task."""
        return f"{type(self).__name__}({len(self)} tasks, splits={self.splits()})"

    def ids(self) -> list[str]:
        """Return every task id in order."""
        return [task.id for task in self._tasks]

    def splits(self) -> list[str]:
        """Return the names of the splits present, sorted."""
        return sorted({task.split for task in self._tasks})

    def get(self, task_id: str) -> Task:
        """Return the task with this id.

        Raises:
            UnknownTask: No such id; the error lists the closest ids.
        """
        try:
            return self._by_id[task_id]
        except KeyError:
            close = difflib.get_close_matches(str(task_id), list(self._by_id), n=3)
            raise UnknownTask(task_id, len(self._by_id), close) from None

    def sample(self, rng: np.random.Generator | random.Random) -> Task:
        """Draw one task uniformly.

        Args:
            rng: A seeded ``numpy.random.Generator`` or ``random.Random``; the
                caller owns the seed, so episodes are reproducible.

        Raises:
            ConfigError: The source is empty.
        """
        if not self._tasks:
            raise ConfigError("Cannot sample from an empty task source.")
        if isinstance(rng, random.Random):
            index = rng.randrange(len(self._tasks))
        else:
            index = int(rng.integers(len(self._tasks)))
        return self._tasks[index]

    def split(self, name: str) -> ListTaskSource:
        """Return the tasks whose ``split`` is ``name``, in order.

        Raises:
            ConfigError: No task belongs to that split (an empty split is
                almost always a typo or the wrong source).
        """
        chosen = [task for task in self._tasks if task.split == name]
        if not chosen:
            raise ConfigError(
                f"No tasks in split {name!r}; this source has splits {self.splits()}."
            )
        return ListTaskSource(chosen)


class JSONLTaskSource(ListTaskSource):
    """Tasks read from a JSON-lines file (``.jsonl`` or ``.jsonl.gz``), one task per line.

    Each line is an object with the fields of :class:`Task`
    (``id``, ``prompt``, and optionally ``data``, ``split``, ``metadata``);
    :func:`write_jsonl` writes such a file. Blank lines are skipped.

    Args:
        path: The file to read.

    Raises:
        ConfigError: A line is not valid JSON or not a valid task; the message
            names the file and line.
    """

    def __init__(self, path: str | Path) -> None:
        """Read every line of ``path`` now, so a bad file fails at construction."""
        self.path = Path(path)
        super().__init__(_read_jsonl(self.path))


def _read_jsonl(path: Path) -> list[Task]:
    opener = gzip.open if path.suffix == ".gz" else open
    tasks = []
    with opener(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                tasks.append(Task.from_dict(json.loads(line)))
            except (json.JSONDecodeError, ConfigError, TypeError) as error:
                raise ConfigError(f"{path}:{number}: not a valid task record: {error}") from error
    return tasks


def write_jsonl(tasks: Iterable[Task], path: str | Path) -> Path:
    """Write tasks to a JSON-lines file that :class:`JSONLTaskSource` reads back.

    Args:
        tasks: The tasks; their ``data`` and ``metadata`` must be JSON-serialisable.
        path: Destination; a ``.gz`` suffix writes a gzip-compressed file.

    Returns:
        The path written.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as out:
        for task in tasks:
            out.write(json.dumps(task.to_dict(), ensure_ascii=False) + "\n")
    return path
