"""GRPOTrainer end to end on a tiny local model: logging, updates, exact resume, learning."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.trainers.conftest import ReplaySource, crash_and_resume, grpo_config, synthetic_groups
from toolgym.rollout.trajectory import read_jsonl
from toolgym.trainers.checkpoint import latest_checkpoint
from toolgym.trainers.grpo import GRPOTrainer
from toolgym.trainers.metrics import read_metrics


def snapshot(trainer: GRPOTrainer) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trainer.policy.trainable_state_dict().items()}


def test_train_logs_the_loss_changes_parameters_and_writes_the_run(tiny_dir: Path,
                                                                   tmp_path: Path) -> None:
    trainer = GRPOTrainer(grpo_config(tmp_path / "run", tiny_dir), echo=None)
    before = snapshot(trainer)
    history = trainer.train()
    records = read_metrics(tmp_path / "run")
    assert [r["step"] for r in records] == [1, 2]
    assert all(isinstance(r["loss"], float) for r in records)
    for key in ("reward_mean", "success_rate", "entropy", "clip_fraction", "approx_kl",
                "grad_norm", "train_tokens_per_s", "gen_tokens_per_s", "env_time_share",
                "staleness_mean", "lr"):
        assert key in records[0], key
    # the sampler's logprobs and the trainer's recomputation agree: on-policy ratio is 1
    assert history[0]["ratio_mean"] == pytest.approx(1.0, abs=1e-3)
    after = trainer.policy.trainable_state_dict()
    for name, value in before.items():
        assert not torch.equal(value, after[name]), f"Parameter {name} has not changed."
    assert trainer.agent.policy_version == 2 and trainer.source.policy_version == 2
    assert latest_checkpoint(tmp_path / "run").name == "step_00000002"
    trajs = list(read_jsonl(tmp_path / "run" / "trajectories.jsonl"))
    assert len(trajs) == 2 * 4 * 4 and {t.info["train_step"] for t in trajs} == {1, 2}
    assert (tmp_path / "run" / "final" / "config.json").exists()
    assert (tmp_path / "run" / "config.yaml").exists()


def test_lora_with_rloo_kl_tis_and_a_copied_agent(tiny_dir: Path, tmp_path: Path) -> None:
    cfg = grpo_config(tmp_path / "run", tiny_dir, advantage_estimator="rloo", kl_coef=0.1,
                      tis_cap=2.0, weight_sync="copy", model={"lora": True, "lora_r": 4})
    trainer = GRPOTrainer(cfg, echo=None)
    assert trainer.agent.model is not trainer.policy.model
    history = trainer.train()
    assert all("kl_ref" in h and h["tis_weight_mean"] > 0 for h in history)
    assert trainer.agent.policy_version == 2
    exported = trainer.policy.export_state_dict()
    for name, value in trainer.agent.model.state_dict().items():
        assert torch.equal(value, exported[name]), name


def test_gradient_accumulation_matches_one_big_micro_batch(tiny_dir: Path, tmp_path: Path) -> None:
    groups = synthetic_groups(tiny_dir, 4, 4, seed=1)
    weights, histories = [], []
    for micro in (3, 16):
        # a large Adam eps keeps the first step smooth in the gradient (no g / |g| sign flips)
        cfg = grpo_config(tmp_path / f"m{micro}", tiny_dir, total_steps=1, micro_batch_size=micro,
                          export_final=False, optim={"eps": 1e-3})
        trainer = GRPOTrainer(cfg, source=ReplaySource([groups]), echo=None)
        history = trainer.train()
        assert history[0]["ratio_mean"] == pytest.approx(1.0, abs=1e-5)  # recomputation = sampler
        weights.append(snapshot(trainer))
        histories.append(history[0])
    for key in ("loss", "grad_norm", "entropy"):  # the same loss and gradient, however split
        assert histories[0][key] == pytest.approx(histories[1][key], rel=1e-5), key
    for name, value in weights[0].items():
        torch.testing.assert_close(value, weights[1][name], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora-dropout"])
def test_resume_is_exact_4_steps_equal_2_plus_save_resume_2(tiny_dir: Path, tmp_path: Path,
                                                            lora: bool) -> None:
    batches = [synthetic_groups(tiny_dir, 4, 4, seed=s) for s in range(4)]
    cfg = grpo_config(tmp_path / "a", tiny_dir, total_steps=4, save_every=2, num_mini_batches=2,
                      update_epochs=2, micro_batch_size=4, export_final=False,
                      model={"lora": lora, "lora_r": 4, "lora_dropout": 0.1 if lora else 0.0},
                      optim={"warmup_steps": 1})
    straight, resumed, history = crash_and_resume(GRPOTrainer, cfg, batches, tmp_path / "b")

    assert len(history) == 2 and resumed.step == 4 and resumed.source.index == 4
    for name, value in snapshot(straight).items():
        assert torch.equal(value, resumed.policy.trainable_state_dict()[name]), name
    a, b = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    assert [r["loss"] for r in a] == [r["loss"] for r in b]


def test_resume_refuses_to_overwrite_and_fresh_start_refuses_an_existing_run(
        tiny_dir: Path, tmp_path: Path) -> None:
    from toolgym.errors import ConfigError

    groups = synthetic_groups(tiny_dir, 4, 4, seed=0)
    cfg = grpo_config(tmp_path / "r", tiny_dir, total_steps=1, export_final=False)
    GRPOTrainer(cfg, source=ReplaySource([groups]), echo=None).train()
    with pytest.raises(ConfigError, match="pass --resume"):
        GRPOTrainer(cfg, source=ReplaySource([groups]), echo=None).train()


def test_reward_rises_on_a_learnable_toy_env(tiny_dir: Path, tmp_path: Path) -> None:
    """GRPO, 20 steps of 8 prompts x 8: the share of digits in the reply goes up."""
    cfg = grpo_config(tmp_path / "run", tiny_dir, total_steps=20, groups_per_step=8,
                      rollout={"group_size": 8, "concurrency": 64}, export_final=False)
    history = GRPOTrainer(cfg, echo=None).train()
    rewards = [h["reward_mean"] for h in history]
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    assert last > first + 0.25, rewards


def test_a_missing_env_id_is_a_config_error(tiny_dir: Path, tmp_path: Path) -> None:
    from toolgym.errors import ConfigError

    cfg = grpo_config(tmp_path / "run", tiny_dir, rollout={"env_id": ""})
    with pytest.raises(ConfigError, match="rollout.env_id is required"):
        GRPOTrainer(cfg, echo=None)
