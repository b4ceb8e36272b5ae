"""PPOTrainer: GAE over action tokens, the value head, end to end, exact resume, config errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch.testing import assert_close
from typer.testing import CliRunner

from tests.trainers.conftest import ReplaySource, crash_and_resume, synthetic_groups, train_config
from tests.trainers.test_cli_train import write_config
from toolgym.cli.train import app
from toolgym.errors import ConfigError
from toolgym.rollout.trajectory import Trajectory, Turn
from toolgym.trainers.advantages import gae
from toolgym.trainers.batching import build_batch
from toolgym.trainers.grpo import GRPOConfig
from toolgym.trainers.metrics import read_metrics
from toolgym.trainers.ppo import PPOConfig, PPOTrainer, ValueHead, token_gae
from toolgym.trainers.turn_batch import turn_tensors

PAD = 0


def ppo_config(run_dir: Path, model_dir: Path, **overrides: Any) -> PPOConfig:
    return train_config(PPOConfig, run_dir, model_dir, **overrides)


def snapshot(trainer: PPOTrainer) -> dict[str, torch.Tensor]:
    weights = {k: v.clone() for k, v in trainer.policy.trainable_state_dict().items()}
    weights.update({f"value_head.{k}": v.clone()
                    for k, v in trainer.value_head.state_dict().items()})
    return weights


# ------------------------------------------------------- GAE over action tokens
def two_turns(reward: float, outcome: str = "success", *, process: float = 0.0) -> Trajectory:
    """prompt [1, 2], action [7, 7], observation [3], action [8] -> actions at 2, 3, 5."""
    turns = [Turn("a", [7, 7], [-0.5, -0.5], prompt_ids=[1, 2], obs_ids=[3], reward=process),
             Turn("b", [8], [-0.25], obs_ids=[4])]
    return Trajectory("e", "t", turns, final_reward=reward, outcome=outcome)


def run_token_gae(trajs: list[Trajectory], values: torch.Tensor, bootstrap: torch.Tensor, *,
                  gamma: float, lam: float, process_coef: float = 1.0
                  ) -> tuple[torch.Tensor, torch.Tensor, Any]:
    batch, _ = build_batch(trajs, pad_id=PAD)
    turns = turn_tensors(trajs, process_coef=process_coef)
    adv, ret = token_gae(batch, values, turns.rewards, turns.mask, turns.terminated, bootstrap,
                         gamma=gamma, lam=lam)
    return adv, ret, batch


def test_gae_worked_by_hand_skips_observation_tokens() -> None:
    """gamma = lam = 1: A_t = (rewards to go) - V_t over the action tokens only.

    Process reward 0.5 on turn 0's last token (position 3), outcome 1 on the last
    one (5). The observation at 4 has V = 100 and must not matter.
    """
    values = torch.tensor([[0.0, 0.0, 0.1, 0.2, 100.0, 0.4]])
    adv, ret, _ = run_token_gae([two_turns(1.0, process=0.5)], values, torch.zeros(1),
                                gamma=1.0, lam=1.0)
    assert_close(adv, torch.tensor([[0.0, 0.0, 1.4, 1.3, 0.0, 0.6]]))
    assert_close(ret, torch.tensor([[0.0, 0.0, 1.5, 1.5, 0.0, 1.0]]))


def test_gae_equals_the_pure_function_on_each_action_token_subsequence() -> None:
    torch.manual_seed(0)
    rewrite = Trajectory("e", "t", [  # a template that rewrites history: two samples
        Turn("a", [7, 7, 7], [-0.1] * 3, prompt_ids=[1, 2], reward=0.3),
        Turn("b", [8, 8], [-0.1] * 2, prompt_ids=[5, 6, 3])], final_reward=0.7,
        outcome="success")
    trajs = [two_turns(1.0, process=0.2), two_turns(0.0, "truncated"), rewrite]
    batch, _ = build_batch(trajs, pad_id=PAD)
    values = torch.randn(batch.input_ids.shape)
    bootstrap = torch.tensor([9.0, 0.5, 9.0])  # read only for the truncated one
    adv, ret, batch = run_token_gae(trajs, values, bootstrap, gamma=0.9, lam=0.8,
                                    process_coef=0.5)
    # the oracle: each trajectory's action tokens, in order, as one row of the pure gae
    expected_rewards = {0: [0.0, 0.1, 1.0], 1: [0.0, 0.0, 0.0], 2: [0.0, 0.0, 0.15, 0.0, 0.7]}
    for b, rewards in expected_rewards.items():
        rows = (batch.traj_index == b).nonzero()[:, 0]
        where = [(int(r), int(c)) for r in rows for c in batch.loss_mask[r].nonzero()[:, 0]]
        idx_r, idx_c = torch.tensor([w[0] for w in where]), torch.tensor([w[1] for w in where])
        a, r = gae(torch.tensor([rewards]), values[idx_r, idx_c][None],
                   torch.ones(1, len(where), dtype=torch.bool), gamma=0.9, lam=0.8,
                   terminated=torch.tensor([b != 1]), bootstrap_values=bootstrap[b : b + 1])
        assert_close(adv[idx_r, idx_c], a[0])
        assert_close(ret[idx_r, idx_c], r[0])
    assert not adv[~batch.loss_mask].any() and not ret[~batch.loss_mask].any()
    assert len(batch) == 4  # the rewritten trajectory really is two samples


def test_a_turn_cut_by_max_length_keeps_its_reward_on_the_last_kept_token() -> None:
    traj = two_turns(1.0, process=0.5)
    batch, _ = build_batch([traj], pad_id=PAD, max_length=4)  # turn 1 (position 5) is cut
    turns = turn_tensors([traj])
    adv, _ = token_gae(batch, torch.zeros(batch.input_ids.shape), turns.rewards, turns.mask,
                       turns.terminated, torch.zeros(1), gamma=1.0, lam=1.0)
    assert_close(adv, torch.tensor([[0.0, 0.0, 1.5, 1.5]]))


def test_value_head_is_aligned_like_the_logprobs() -> None:
    head = ValueHead(2)
    with torch.no_grad():
        head.linear.weight.copy_(torch.tensor([[1.0, 0.0]]))
    hidden = torch.tensor([[[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]])
    assert head.score(hidden).tolist() == [[1.0, 2.0, 3.0]]  # V after each token
    assert head(hidden).tolist() == [[0.0, 1.0, 2.0]]  # V of the state each token came from


# ------------------------------------------------------------------- training
def test_value_loss_falls_on_a_fixed_batch(tiny_dir: Path, tmp_path: Path) -> None:
    """gamma = lam = 1 makes the returns the fixed rewards: the head must learn to predict them."""
    groups = synthetic_groups(tiny_dir, 4, 4, seed=3)
    cfg = ppo_config(tmp_path / "run", tiny_dir, total_steps=16, export_final=False,
                     save_trajectories=False, optim={"lr": 1e-3}, value_lr=3e-2)
    history = PPOTrainer(cfg, source=ReplaySource([groups]), echo=None).train()
    losses = [h["value_loss"] for h in history]
    assert max(losses[-3:]) < 0.4 * losses[0], losses  # measured: 0.084 -> 0.018
    assert history[0]["value_explained_variance"] == 0.0  # V = 0 before the first update
    assert history[-1]["value_explained_variance"] > 0.5  # measured: 0.74


def test_micro_batches_give_the_same_policy_and_value_update(tiny_dir: Path,
                                                             tmp_path: Path) -> None:
    groups = synthetic_groups(tiny_dir, 4, 4, seed=1)
    weights, histories = [], []
    for micro in (3, 16):
        cfg = ppo_config(tmp_path / f"m{micro}", tiny_dir, total_steps=2, micro_batch_size=micro,
                         export_final=False, optim={"eps": 1e-3})
        trainer = PPOTrainer(cfg, source=ReplaySource([groups]), echo=None)
        histories.append(trainer.train()[-1])
        weights.append(snapshot(trainer))
    for key in ("loss", "value_loss", "grad_norm", "value_mean"):
        assert histories[0][key] == pytest.approx(histories[1][key], rel=1e-4), key
    for name, value in weights[0].items():
        assert_close(value, weights[1][name], atol=1e-5, rtol=1e-5)


def test_ppo_on_the_toy_env_updates_policy_and_value_head_and_logs(tiny_dir: Path,
                                                                   tmp_path: Path) -> None:
    cfg = ppo_config(tmp_path / "run", tiny_dir, total_steps=3, rollout={"group_size": 2},
                     model={"lora": True, "lora_r": 4})
    trainer = PPOTrainer(cfg, echo=None)
    before = snapshot(trainer)
    history = trainer.train()
    records = read_metrics(tmp_path / "run")
    assert [r["step"] for r in records] == [1, 2, 3]
    for key in ("value_loss", "value_explained_variance", "value_mean", "return_mean",
                "value_clip_fraction", "policy_loss", "reward_mean", "grad_norm"):
        assert key in records[-1], key
    assert history[0]["ratio_mean"] == pytest.approx(1.0, abs=1e-3)
    after = snapshot(trainer)
    for name, value in before.items():  # LoRA adapter and value head both train
        assert not torch.equal(value, after[name]), f"Parameter {name} has not changed."
    assert (tmp_path / "run" / "final" / "config.json").exists()


def test_reward_rises_on_a_learnable_toy_env(tiny_dir: Path, tmp_path: Path) -> None:
    """PPO, 20 steps of 32 episodes of one: the share of digits in the reply goes up."""
    cfg = ppo_config(tmp_path / "run", tiny_dir, total_steps=20, groups_per_step=32,
                     rollout={"group_size": 1, "concurrency": 64}, export_final=False,
                     save_trajectories=False)
    history = PPOTrainer(cfg, echo=None).train()
    rewards = [h["reward_mean"] for h in history]
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    assert last > first + 0.25, rewards


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_resume_is_exact_with_the_value_head(tiny_dir: Path, tmp_path: Path, lora: bool) -> None:
    batches = [synthetic_groups(tiny_dir, 4, 4, seed=s) for s in range(4)]
    cfg = ppo_config(tmp_path / "a", tiny_dir, total_steps=4, save_every=2, num_mini_batches=2,
                     update_epochs=2, micro_batch_size=4, export_final=False, lam=0.9,
                     model={"lora": lora, "lora_r": 4, "lora_dropout": 0.1 if lora else 0.0},
                     optim={"warmup_steps": 1})
    straight, resumed, history = crash_and_resume(PPOTrainer, cfg, batches, tmp_path / "b")

    assert len(history) == 2 and resumed.step == 4
    assert torch.count_nonzero(resumed.value_head.linear.weight) > 0
    for name, value in snapshot(straight).items():
        assert torch.equal(value, snapshot(resumed)[name]), name
    a, b = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    for key in ("loss", "value_loss", "value_explained_variance"):
        assert [r[key] for r in a] == [r[key] for r in b], key


# ------------------------------------------------------------------ config
@pytest.mark.parametrize(("fields", "message"), [
    ({"value_coef": 0.0}, "use algorithm: grpo"),
    ({"value_clip": -1.0}, "or null to disable it"),
    ({"value_lr": 0.0}, r"null \(use optim.lr\)"),
    ({"lam": 1.5}, "0 <= lam <= 1"),
])
def test_config_errors_name_the_fix(fields: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PPOConfig(**fields)  # type: ignore[arg-type]


def test_gae_in_grpo_points_to_algorithm_ppo() -> None:
    with pytest.raises(ConfigError, match="algorithm: ppo"):
        GRPOConfig(advantage_estimator="gae")


def test_cli_dry_run_with_algorithm_ppo(tiny_dir: Path, tmp_path: Path) -> None:
    path = write_config(tmp_path, tiny_dir, algorithm="ppo")
    result = CliRunner().invoke(app, ["train", str(path), "--set", "lam=0.95",
                                      "--set", "value_clip=null", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "lam: 0.95  # GAE lambda" in result.output
    assert "value_clip: null" in result.output and "value_coef: 0.1" in result.output
    assert yaml.safe_load(path.read_text())["algorithm"] == "ppo"
