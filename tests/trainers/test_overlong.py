"""DAPO's overlong filtering and soft punishment for turns cut by max_new_tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.trainers.conftest import ReplaySource, grpo_config
from toolgym.errors import ConfigError
from toolgym.rollout.trajectory import Trajectory, Turn
from toolgym.trainers.advantages import grpo_advantages
from toolgym.trainers.batching import Batch
from toolgym.trainers.grpo import GRPOTrainer
from toolgym.trainers.overlong import soft_overlong_penalty


@pytest.mark.parametrize("length,expected", [(0, 0.0), (80, 0.0), (85, -0.25), (90, -0.5),
                                             (100, -1.0), (130, -1.0)])
def test_soft_overlong_penalty_hand_worked(length: int, expected: float) -> None:
    # budget 100, buffer 20: free up to 80 tokens, then -1/20 per token, -1 at the budget
    assert soft_overlong_penalty(length, budget=100, buffer=20) == pytest.approx(expected)
    assert soft_overlong_penalty(length, budget=100, buffer=20, factor=0.5) == pytest.approx(
        expected / 2)
    assert soft_overlong_penalty(length, budget=100, buffer=0) == 0.0


def _traj(lengths: list[int], reward: float, group: str) -> Trajectory:
    """An episode with one turn per length; a turn of the full budget (8) was cut there."""
    turns = [Turn("a", [40 + i % 5 for i in range(n)], [-0.5] * n,
                  prompt_ids=[30, 31] if k == 0 else [], obs_ids=[32],
                  finish_reason="length" if n == 8 else "stop")
             for k, n in enumerate(lengths)]
    return Trajectory("toy", "t", turns, final_reward=reward, group_id=group, outcome="success")


def _groups() -> list[list[Trajectory]]:
    return [[_traj([3, 8], 1.0, "g0"), _traj([2], 0.0, "g0"), _traj([7, 2], 1.0, "g0"),
             _traj([4], 0.0, "g0")],
            [_traj([8], 0.0, "g1"), _traj([1, 1], 1.0, "g1"), _traj([5], 1.0, "g1"),
             _traj([6], 0.0, "g1")]]


def _trainer(tmp_path: Path, tiny_dir: Path, **overrides: object) -> GRPOTrainer:
    cfg = grpo_config(tmp_path / "run", tiny_dir, total_steps=1, groups_per_step=2,
                      export_final=False, sampling={"max_new_tokens": 8}, **overrides)
    return GRPOTrainer(cfg, source=ReplaySource([_groups()]), echo=None)


def _first_token_advantages(batch: Batch) -> torch.Tensor:
    first = batch.loss_mask.float().argmax(-1, keepdim=True)
    return batch.advantages.gather(1, first).squeeze(1)


def test_overlong_filter_masks_cut_episodes_but_keeps_them_in_the_baseline(
        tiny_dir: Path, tmp_path: Path) -> None:
    trajs = [t for g in _groups() for t in g]
    trainer = _trainer(tmp_path, tiny_dir, overlong_filter=True)
    batch, metrics = trainer.training_batch(trajs)
    assert metrics["batch_overlong_filtered"] == 2
    trained = batch.loss_mask.any(-1).tolist()
    assert trained == [False, True, True, True, False, True, True, True]
    # the others' advantages are GRPO's over all four of the group, the cut ones included
    unfiltered, _ = _trainer(tmp_path / "b", tiny_dir).training_batch(trajs)
    kept = torch.tensor(trained)
    torch.testing.assert_close(batch.advantages[kept], unfiltered.advantages[kept])
    assert batch.advantages[~kept].abs().sum() == 0
    history = _trainer(tmp_path / "c", tiny_dir, overlong_filter=True).train()
    assert history[0]["batch_overlong_filtered"] == 2 and history[0]["optimizer_steps"] == 1


def test_soft_overlong_punishment_shapes_the_trained_reward_only(tiny_dir: Path,
                                                                 tmp_path: Path) -> None:
    trajs = [t for g in _groups() for t in g]
    trainer = _trainer(tmp_path, tiny_dir, overlong_buffer=4, overlong_penalty=0.5)
    batch, metrics = trainer.training_batch(trajs)
    # budget 8, buffer 4: a turn of n > 4 tokens costs 0.5 * (n - 4) / 4; the worst turn counts
    penalty = torch.tensor([-0.5, 0.0, -0.375, 0.0, -0.5, 0.0, -0.125, -0.25])
    rewards = torch.tensor([t.final_reward for t in trajs])
    expected = grpo_advantages(rewards + penalty, torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]))
    torch.testing.assert_close(_first_token_advantages(batch), expected)
    assert metrics["overlong_penalty_mean"] == pytest.approx(float(penalty.mean()))
    assert [t.final_reward for t in trajs] == rewards.tolist()  # the recorded episodes: untouched


def test_overlong_options_are_checked(tiny_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="overlong_buffer <= sampling.max_new_tokens"):
        grpo_config(tmp_path, tiny_dir, overlong_buffer=9, sampling={"max_new_tokens": 8})
    with pytest.raises(ConfigError, match="overlong_penalty must be >= 0"):
        grpo_config(tmp_path, tiny_dir, overlong_penalty=-1.0)
