"""Metrics: batch summaries worked out by hand, whole-line JSONL, resume truncation, LR shape."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from toolgym.rollout.trajectory import Trajectory, Turn
from toolgym.trainers.metrics import MetricsLogger, read_metrics, rollout_metrics, truncate_file
from toolgym.trainers.optim import OptimConfig, lr_factor


def traj(reward: float, outcome: str, version: int, env_s: float, model_s: float) -> Trajectory:
    return Trajectory("e", "t", [Turn("a", [1, 2, 3], [0.0] * 3)], final_reward=reward,
                      outcome=outcome, policy_version=version,
                      timings={"env_s": env_s, "model_s": model_s, "wall_s": env_s + model_s})


def test_rollout_metrics_by_hand() -> None:
    m = rollout_metrics([traj(1.0, "success", 4, 1.0, 3.0), traj(0.0, "failure", 3, 3.0, 1.0),
                         traj(0.5, "truncated", 5, 0.0, 0.0)], policy_version=5)
    assert m["reward_mean"] == pytest.approx(0.5) and m["reward_std"] == pytest.approx(0.5)
    assert m["success_rate"] == pytest.approx(1 / 3)
    assert m["outcome_truncated"] == pytest.approx(1 / 3)
    assert m["env_time_share"] == pytest.approx(4 / 8)
    assert (m["staleness_mean"], m["staleness_max"]) == (1.0, 2.0)  # lags 1, 2, 0
    assert m["action_tokens_mean"] == 3.0


def test_a_torn_last_line_is_skipped_and_resume_cuts_back(tmp_path: Path) -> None:
    log = MetricsLogger(tmp_path, tensorboard=False)
    log.log(1, {"loss": 1.0, "kl": float("nan")})
    size = log.path.stat().st_size
    log.log(2, {"loss": 0.5})
    with open(log.path, "a") as f:
        f.write('{"step": 3, "lo')  # a writer killed mid-line
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]
    assert read_metrics(tmp_path)[0]["kl"] is None  # JSON has no NaN
    truncate_file(log.path, size)
    assert [r["step"] for r in read_metrics(log.path)] == [1]
    log.close()


def test_tensorboard_events_are_written_when_installed(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    log = MetricsLogger(tmp_path)
    log.log(1, {"loss": 1.0})
    log.close()
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_warmup_then_cosine_to_the_floor() -> None:
    cfg = OptimConfig(warmup_steps=2, min_lr_ratio=0.1)
    factors = [lr_factor(s, 10, cfg) for s in range(10)]
    assert factors[:3] == [0.5, 1.0, 1.0]
    assert all(a >= b for a, b in zip(factors[2:], factors[3:], strict=False))
    assert factors[-1] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 7 / 8)))
    assert lr_factor(50, 10, cfg) == pytest.approx(0.1)
    assert lr_factor(5, 10, OptimConfig(schedule="constant")) == 1.0


def test_a_corrupt_middle_line_is_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    """A corrupt middle line made read_metrics (toolgym doctor, plots) raise."""
    log = MetricsLogger(tmp_path, tensorboard=False)
    log.log(1, {"loss": 1.0})
    with open(log.path, "ab") as f:
        f.write(b"\x00" * 16 + b"\n")
    log.log(2, {"loss": 0.5})
    log.close()
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]
