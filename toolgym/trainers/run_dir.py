"""A run directory: its config, its append-only logs, its checkpoints, and resuming them.

Every trainer (:class:`~toolgym.trainers.base.Trainer` and its algorithms,
:class:`~toolgym.trainers.sft.SFTTrainer`) keeps a run the same way::

    RUN_DIR/config.yaml              the resolved config, written at every start
    RUN_DIR/metrics.jsonl            one line per step (and the trainer's other logs)
    RUN_DIR/checkpoints/step_N/      weights, optimiser, schedule, RNG states, counters

A start refuses a directory that holds a checkpoint unless the caller resumes
(a second run must not silently append to the first); a fresh start empties
the logs. Every checkpoint records each log's length, and a resume cuts the
logs back to it, so a step run after the checkpoint and before a crash is not
logged twice. The checkpoint files themselves are written atomically by
:mod:`~toolgym.trainers.checkpoint`.

    >>> import tempfile
    >>> run = RunDir(tempfile.mkdtemp(), logs=("metrics.jsonl",))
    >>> run.start({"lr": 0.1}, resume=False) is None  # a fresh run: nothing to resume
    True
    >>> (run.path / "config.yaml").read_text().strip()
    'lr: 0.1'
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toolgym.errors import ConfigError
from toolgym.trainers.checkpoint import (
    capture_rng,
    latest_checkpoint,
    restore_rng,
    save_checkpoint,
)
from toolgym.trainers.config import dump_yaml, format_config
from toolgym.trainers.metrics import file_size, truncate_file
from toolgym.trainers.policy import Policy

__all__ = ["RunDir", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class RunDir:
    """One run's directory (see the module docstring).

    Args:
        path: The run directory; created by :meth:`start`.
        logs: Append-only files of the run, relative to ``path``, that a fresh
            start empties and a resume cuts back.
        keep_last: Complete checkpoints to keep.
    """

    def __init__(self, path: str | Path, *, logs: Sequence[str], keep_last: int = 2) -> None:
        self.path = Path(path)
        self.logs = tuple(logs)
        self.keep_last = keep_last

    def start(self, config: Any, *, resume: bool) -> Path | None:
        """Create the directory and write ``config.yaml``; return the checkpoint to resume from.

        Returns:
            The latest checkpoint when ``resume`` (the caller restores it), or
            None for a fresh run, whose logs are emptied.

        Raises:
            ConfigError: the directory holds a checkpoint and ``resume`` is false.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        checkpoint = latest_checkpoint(self.path)
        if checkpoint is not None and not resume:
            raise ConfigError(f"{self.path} already holds {checkpoint.name}: pass --resume to "
                              "continue that run, or choose another run_dir.")
        if checkpoint is None:
            for name in self.logs:
                truncate_file(self.path / name, 0)
        dump_yaml(config, self.path / "config.yaml")
        return checkpoint

    def announce(self, echo: Callable[[str], None] | None, trainer: str, config: Any, *,
                 resumed_at: int | None) -> None:
        """Echo a run's header: trainer, directory, every config field with its help."""
        if echo is None:
            return
        echo(f"# {trainer}: {self.path}"
             + (f" (resumed at step {resumed_at})" if resumed_at is not None else ""))
        echo(format_config(config))

    def capture(self, generator: torch.Generator) -> dict[str, Any]:
        """What every checkpoint keeps besides the trainer's own counters.

        The global RNG states, the trainer's ``generator`` and each log's
        length, captured now (on the caller's thread: a checkpoint written in
        a worker thread still holds the state of this moment).
        """
        return {"rng": capture_rng(), "generator": generator.get_state(),
                "files": {name: file_size(self.path / name) for name in self.logs}}

    def restore(self, state: dict[str, Any], generator: torch.Generator) -> None:
        """Undo :meth:`capture`: the RNG states and ``generator``'s, and the logs cut back."""
        restore_rng(state["rng"])
        generator.set_state(state["generator"])
        for name, size in state["files"].items():
            truncate_file(self.path / name, int(size))

    def save(self, step: int, *, policy: Policy, optimizer: torch.optim.Optimizer,
             scheduler: Any, state: dict[str, Any]) -> Path:
        """Checkpoint ``step`` (``state`` holds :meth:`capture`'s keys), keeping ``keep_last``."""
        return save_checkpoint(self.path, step, policy=policy, optimizer=optimizer,
                               scheduler=scheduler, state=state, keep_last=self.keep_last)
