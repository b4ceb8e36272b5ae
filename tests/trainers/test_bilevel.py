"""BiLevelTrainer: turn-level GAE above token-level GAE, its reductions, learning and resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch.testing import assert_close
from typer.testing import CliRunner

from tests.trainers.conftest import ReplaySource, crash_and_resume, synthetic_groups, train_config
from toolgym.cli.train import app
from toolgym.errors import ConfigError
from toolgym.trainers.bilevel import BiLevelConfig, BiLevelTrainer
from toolgym.trainers.config import to_dict
from toolgym.trainers.metrics import read_metrics
from toolgym.trainers.ppo import PPOConfig, PPOTrainer
from toolgym.trainers.turn_advantages import turn_gae
from toolgym.trainers.turn_batch import turn_tensors

CRITIC = {"dim": 8, "hidden": 16, "batch_size": 8, "updates_per_step": 2}


def bilevel_config(run_dir: Path, model_dir: Path, **overrides: Any) -> BiLevelConfig:
    return train_config(BiLevelConfig, run_dir, model_dir, critic=CRITIC, **overrides)


def test_every_token_of_a_turn_is_scored_against_that_turns_target(tiny_dir: Path,
                                                                   tmp_path: Path) -> None:
    groups = synthetic_groups(tiny_dir, 2, 3, seed=1)
    trainer = BiLevelTrainer(bilevel_config(tmp_path / "run", tiny_dir, whiten_advantages=False),
                             source=ReplaySource([groups]), echo=None)
    with torch.no_grad():  # a head that is not zero, so V differs from token to token
        trainer.value_head.linear.weight.normal_(0.0, 0.5)
    flat = [t for g in groups for t in g]
    batch, metrics = trainer.make_batch(flat)
    assert metrics["critic_buffer"] == 12 and "turn_target_mean" in metrics
    turns = turn_tensors(flat)  # the targets: turn-level GAE on the (updated) turn critic
    values, after = trainer.critic.turn_values(flat, turns.mask, process_coef=1.0)
    _, targets = turn_gae(turns.rewards, values, turns.mask, gamma=1.0, lam=0.95,
                          terminated=turns.terminated, bootstrap_values=after)
    assert batch.turn_index is not None and batch.returns is not None
    for row in range(len(batch)):
        per_turn = {}
        for k in (0, 1):
            tokens = batch.turn_index[row] == k
            assert bool(tokens.any())
            # gamma = lam = 1 inside a turn: every token's return is the turn's target
            returns = batch.returns[row][tokens]
            assert_close(returns, torch.full_like(returns, float(returns[0])))
            per_turn[k] = float(returns[0])
        assert per_turn[1] == pytest.approx(flat[row].final_reward, abs=1e-5)
        assert per_turn[0] == pytest.approx(float(targets[row, 0]), abs=1e-5)
        assert abs(per_turn[0] - flat[row].final_reward) > 1e-3  # not the episode's return
    assert_close(batch.advantages, (batch.returns - batch.old_values) * batch.loss_mask)
    assert not bool(batch.advantages[~batch.loss_mask].any())


def test_with_one_turn_it_is_token_level_ppo(tiny_dir: Path, tmp_path: Path) -> None:
    groups = synthetic_groups(tiny_dir, 2, 3, seed=2)
    for group in groups:
        for traj in group:
            traj.turns = traj.turns[:1]
            traj.turns[0].obs_ids = []
    flat = [t for g in groups for t in g]
    fields = dict(gamma=0.97, lam=0.9)
    bilevel = BiLevelTrainer(bilevel_config(tmp_path / "b", tiny_dir, **fields),
                             source=ReplaySource([groups]), echo=None)
    ppo = PPOTrainer(train_config(PPOConfig, tmp_path / "p", tiny_dir, **fields),
                     source=ReplaySource([groups]), echo=None)
    with torch.no_grad():
        bilevel.value_head.linear.weight.normal_(0.0, 0.5)
        ppo.value_head.load_state_dict(bilevel.value_head.state_dict())
    ours, _ = bilevel.make_batch(flat)
    theirs, _ = ppo.make_batch(flat)
    assert_close(ours.advantages, theirs.advantages)
    assert_close(ours.returns, theirs.returns)


def test_learns_and_resumes_exactly_with_both_critics(tiny_dir: Path, tmp_path: Path) -> None:
    batches = [synthetic_groups(tiny_dir, 2, 4, seed=s) for s in range(4)]
    cfg = bilevel_config(tmp_path / "a", tiny_dir, total_steps=4, save_every=2,
                         export_final=False)
    straight, resumed, history = crash_and_resume(BiLevelTrainer, cfg, batches, tmp_path / "b")
    assert len(history) == 2 and resumed.step == 4
    for name, value in straight.critic.online.state_dict().items():
        assert torch.equal(value, resumed.critic.online.state_dict()[name]), name
    for name, value in straight.value_head.state_dict().items():
        assert torch.equal(value, resumed.value_head.state_dict()[name]), name
    for name, value in straight.policy.trainable_state_dict().items():
        assert torch.equal(value, resumed.policy.trainable_state_dict()[name]), name
    a, b = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    for key in ("loss", "value_loss", "critic_q1_loss", "turn_target_mean"):
        assert [r[key] for r in a] == [r[key] for r in b], key


def test_cli_selects_bilevel_and_checks_the_turn_fields(tiny_dir: Path, tmp_path: Path) -> None:
    data = to_dict(bilevel_config(tmp_path / "run", tiny_dir))
    path = tmp_path / "bilevel.yaml"
    path.write_text(yaml.safe_dump({"algorithm": "bilevel", **data}))
    result = CliRunner().invoke(app, ["train", str(path), "--set", "turn_lam=0.5", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "turn_lam: 0.5" in result.output and "critic:" in result.output
    with pytest.raises(ConfigError, match="turn_lam"):
        bilevel_config(tmp_path / "run", tiny_dir, turn_lam=1.5)
