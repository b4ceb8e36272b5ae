"""Training metrics: one JSON line per step, and TensorBoard when it is installed.

The JSONL file is the record (``toolgym plot`` reads it); each line is written
with a single ``write`` on an ``O_APPEND`` descriptor, so a killed run leaves
whole lines (at worst a torn last one, which :func:`read_metrics` skips). A
checkpoint stores the file's length; resuming cuts the file back to it, so a
step that was lost is not logged twice.

:func:`rollout_metrics` summarises the episodes of a batch: reward, success,
outcome shares, where their time went (environment vs model, from
``Trajectory.timings``) and how stale they were.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from toolgym.jsonl import read_records
from toolgym.rollout.trajectory import Trajectory

__all__ = ["MetricsLogger", "file_size", "group_is_mixed", "read_metrics", "rollout_metrics",
           "truncate_file"]

METRICS_FILE = "metrics.jsonl"


class MetricsLogger:
    """Append step metrics to ``run_dir/metrics.jsonl`` (and ``run_dir/tb`` for TensorBoard).

    Args:
        run_dir: The run's directory (created if missing).
        tensorboard: Also write TensorBoard events, if ``tensorboard`` is installed.

    Example:
        >>> import tempfile
        >>> log = MetricsLogger(tempfile.mkdtemp(), tensorboard=False)
        >>> log.log(1, {"loss": 0.5})
        >>> [r["loss"] for r in read_metrics(log.path)]
        [0.5]
        >>> log.close()
    """

    FILE = METRICS_FILE

    def __init__(self, run_dir: str | Path, *, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / METRICS_FILE
        self._tb: Any = _tensorboard_writer(self.run_dir / "tb") if tensorboard else None

    def log(self, step: int, metrics: Mapping[str, float | int]) -> None:
        """Write one line ``{"step": step, "time": unix_time, **metrics}``."""
        record = {"step": step, "time": round(time.time(), 3), **_finite(metrics)}
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        if self._tb is not None:
            for key, value in metrics.items():
                if isinstance(value, int | float) and math.isfinite(value):
                    self._tb.add_scalar(key, value, step)
            self._tb.flush()

    def close(self) -> None:
        """Close the TensorBoard writer; a second call does nothing."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _tensorboard_writer(path: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(path))


def _finite(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: non-finite floats become None."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in metrics.items()}


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics file; a torn last line (a killed writer) and unreadable
    lines are skipped (:func:`toolgym.jsonl.read_records`)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.exists():
        return []
    return [r for r in read_records(path, json.loads) if isinstance(r, dict)]


def truncate_file(path: str | Path, size: int) -> None:
    """Cut ``path`` back to ``size`` bytes (resume: forget what came after the checkpoint)."""
    path = Path(path)
    if path.exists() and path.stat().st_size > size:
        with open(path, "r+b") as f:
            f.truncate(size)
            f.flush()
            os.fsync(f.fileno())


def file_size(path: str | Path) -> int:
    """Size of ``path`` in bytes, 0 when it does not exist."""
    return Path(path).stat().st_size if Path(path).exists() else 0


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def group_is_mixed(group: Iterable[Trajectory]) -> bool:
    """Whether the rewards of a group's episodes differ (``infra_error`` ones, which no
    trainer keeps, left out): a group-relative estimator (GRPO, RLOO) learns only from those."""
    return len({t.final_reward for t in group if t.outcome != "infra_error"}) > 1


def rollout_metrics(trajectories: Sequence[Trajectory], policy_version: int) -> dict[str, float]:
    """Reward, success, outcomes, time split and staleness of a batch's episodes.

    ``groups_mixed`` is the share of groups (by ``group_id``) whose rewards are
    not all equal (:func:`group_is_mixed`): a group-relative estimator (GRPO,
    RLOO) learns only from those, so a run whose early batches have none cannot
    learn at all.
    """
    n = len(trajectories)
    rewards = [t.final_reward for t in trajectories]
    by_group: dict[object, list[Trajectory]] = {}
    for t in trajectories:
        by_group.setdefault(t.group_id, []).append(t)
    outcomes = Counter(t.outcome or "none" for t in trajectories)
    env_s = sum(t.timings.get("env_s", 0.0) for t in trajectories)
    model_s = sum(t.timings.get("model_s", 0.0) for t in trajectories)
    lags = [policy_version - t.policy_version for t in trajectories if t.policy_version is not None]
    out = {
        "reward_mean": _mean(rewards),
        "reward_std": _std(rewards),
        "success_rate": outcomes["success"] / n if n else float("nan"),
        "episodes": float(n),
        "groups_mixed": _mean([float(group_is_mixed(g)) for g in by_group.values()]),
        "turns_mean": _mean([len(t.turns) for t in trajectories]),
        "action_tokens_mean": _mean([t.num_action_tokens for t in trajectories]),
        "episode_wall_s_mean": _mean([t.timings.get("wall_s", 0.0) for t in trajectories]),
        "env_time_share": env_s / (env_s + model_s) if env_s + model_s > 0 else float("nan"),
        "staleness_mean": _mean(lags),
        "staleness_max": float(max(lags)) if lags else float("nan"),
    }
    for outcome in ("failure", "truncated", "agent_error", "infra_error"):
        out[f"outcome_{outcome}"] = outcomes[outcome] / n if n else float("nan")
    return out


def _std(xs: Sequence[float]) -> float:
    if len(xs) < 2:
        return 0.0
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
