"""The sampler and the trainer agree: on-policy, before any update, the ratio is 1.

Each test here failed on the code before issue 13 (acf7ae8): the trainer
recomputed logprobs with temperature only while the sampler recorded top-p
truncated ones, Dr.GRPO's divisor depended on the micro-batch, ...
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tests.trainers.conftest import ReplaySource, grpo_config, synthetic_groups, train_config
from tests.trainers.toy_env import DigitsEnv
from toolgym.agents import ChatTokenizer, SamplingParams
from toolgym.agents.hf import HFAgent
from toolgym.cli.train import app
from toolgym.envs.wrappers import Budget
from toolgym.errors import ConfigError
from toolgym.rollout.episode import run_episode
from toolgym.rollout.trajectory import Trajectory, Turn
from toolgym.trainers.advantages import grpo_advantages
from toolgym.trainers.batching import Batch, build_batch
from toolgym.trainers.checkpoint import latest_checkpoint, load_checkpoint
from toolgym.trainers.grpo import GRPOConfig, GRPOTrainer
from toolgym.trainers.logprobs import token_logprobs
from toolgym.trainers.losses import AGG_MODES
from toolgym.trainers.policy import Policy, load_policy
from toolgym.trainers.ppo import PPOConfig, PPOTrainer
from toolgym.trainers.turn_batch import after_last_turn, turn_contexts
from toolgym.trainers.update import policy_update

runner = CliRunner()


@pytest.mark.parametrize("ratio_level", ["token", "sequence"])
def test_step0_ratio_is_one_with_temperature_and_top_p(tiny_dir: Path, tmp_path: Path,
                                                       ratio_level: str) -> None:
    cfg = grpo_config(tmp_path / "run", tiny_dir, total_steps=1, export_final=False,
                      sampling={"temperature": 0.7, "top_p": 0.8, "max_new_tokens": 8},
                      ratio_level=ratio_level, clip_low=3e-4, clip_high=4e-4)
    history = GRPOTrainer(cfg, echo=None).train()
    # before the fix: 0.80 (the sampler's nucleus-renormalised logprobs against tempered ones)
    assert history[0]["ratio_mean"] == pytest.approx(1.0, abs=1e-3)
    assert history[0]["approx_kl"] == pytest.approx(0.0, abs=1e-4)
    assert history[0]["clip_fraction"] < 0.01  # even GSPO's clip range holds it
    # the mismatch block, logged every step, says the same
    assert history[0]["mismatch_ratio_mean"] == pytest.approx(1.0, abs=1e-3)
    assert history[0]["mismatch_abs_max"] < 1e-3
    assert runner.invoke(app, ["doctor", cfg.run_dir]).exit_code == 0


def test_doctor_flags_a_sampler_that_samples_otherwise_than_the_trainer_scores(
        tiny_dir: Path, tmp_path: Path) -> None:
    # an agent truncating at top_p 0.5 while the trainer is told top_p 1: what a server
    # returning other logprobs than the trainer recomputes looks like
    cfg = grpo_config(tmp_path / "run", tiny_dir, total_steps=1, export_final=False)
    agent = HFAgent(tiny_dir, seed=0, sampling=SamplingParams(top_p=0.5, max_new_tokens=4))
    history = GRPOTrainer(cfg, agent=agent, echo=None).train()
    agent.close()
    assert history[0]["mismatch_ratio_mean"] < 0.9 and history[0]["mismatch_abs_max"] > 0.1
    result = runner.invoke(app, ["doctor", cfg.run_dir])
    assert result.exit_code == 1, result.output
    assert "NOT 1" in result.output and "processed logprobs" in result.output


@pytest.mark.parametrize("mode,level", [("truncate", "token"), ("mask", "token"),
                                        ("truncate", "sequence"), ("mask", "sequence")])
def test_importance_sampling_corrects_a_mismatched_sampler(tiny_dir: Path, tmp_path: Path,
                                                            mode: str, level: str) -> None:
    cfg = grpo_config(tmp_path / "run", tiny_dir, total_steps=1, export_final=False,
                      tis_cap=2.0, is_mode=mode, is_level=level)
    agent = HFAgent(tiny_dir, seed=0, sampling=SamplingParams(top_p=0.5, max_new_tokens=4))
    history = GRPOTrainer(cfg, agent=agent, echo=None).train()
    agent.close()
    h = history[0]
    # the ratio is centred on the trainer's recomputation (1 at the first step), the
    # behaviour -> trainer weight carries the mismatch (< 1: the sampler's nucleus
    # logprobs are higher), truncated or masked at the cap
    assert h["ratio_mean"] == pytest.approx(1.0, abs=1e-4)
    assert h["tis_weight_mean"] < 0.95 and h["mismatch_ratio_mean"] < 0.95


async def test_a_truncated_episode_bootstraps_from_the_next_prompt(tiny_dir: Path) -> None:
    chat = ChatTokenizer.from_pretrained(tiny_dir)
    agent = HFAgent(tiny_dir, chat, seed=0, sampling=SamplingParams(max_new_tokens=4))
    # the env would answer "again"; a one-turn budget cuts the episode there (truncated)
    traj = await run_episode(Budget(DigitsEnv(turns=2), max_turns=1), agent, chat=chat,
                             task_id="t1")
    await agent.aclose()
    assert traj.outcome == "truncated"
    after = after_last_turn(traj)
    context = turn_contexts(traj)[-1] + traj.turns[-1].action_ids
    # before the fix: the context and the action only, a state the policy never acts from
    assert after[: len(context)] == context and len(after) > len(context)
    assert chat.decode(after[len(context):]).endswith(
        "<|im_start|>user\nagain<|im_end|>\n<|im_start|>assistant\n")


def _batch(tiny_dir: Path, groups: list[list[Trajectory]], policy: Policy) -> Batch:
    """A GRPO batch whose behaviour logprobs are the policy's own (on-policy at step 0)."""
    trajs = [t for g in groups for t in g]
    batch, _ = build_batch(trajs, pad_id=policy.pad_id, advantage_fn=grpo_advantages)
    with torch.no_grad():
        logp = token_logprobs(policy.model, batch.input_ids, batch.attention_mask)[0]
    return dataclasses.replace(batch, behaviour_logprobs=torch.where(batch.loss_mask, logp, 0.0))


@pytest.mark.parametrize("ratio_level", ["token", "sequence"])
@pytest.mark.parametrize("mode", AGG_MODES)
def test_one_update_is_the_same_for_every_micro_batch_size(tiny_dir: Path, tmp_path: Path,
                                                           mode: str, ratio_level: str) -> None:
    groups = synthetic_groups(tiny_dir, 2, 4, seed=5)
    for traj in groups[0]:  # their second turn starts a new sample: two rows per trajectory
        traj.turns[1].prompt_ids = [30, 31, 32]
    params = []
    for micro in (1, 3, 8):
        # a clip range the ratios leave (GSPO's is small), so clipping is part of the update
        cfg = grpo_config(tmp_path, tiny_dir, micro_batch_size=micro, loss_agg=mode,
                          entropy_coef=0.01, ratio_level=ratio_level, clip_low=0.01,
                          clip_high=0.01)
        policy = load_policy(cfg.model)
        batch = _batch(tiny_dir, groups, policy)
        gen = torch.Generator().manual_seed(1)
        noise = 0.05 * torch.randn(batch.loss_mask.shape, generator=gen)
        batch = dataclasses.replace(batch, behaviour_logprobs=torch.where(
            batch.loss_mask, batch.behaviour_logprobs + noise, 0.0))  # off-policy
        sgd = torch.optim.SGD(policy.trainable_parameters(), lr=1.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(sgd, lambda _: 1.0)
        policy.model.train()
        out = policy_update(policy, sgd, scheduler, batch, cfg.update,
                            torch.Generator().manual_seed(0))
        assert 0.05 < out["clip_fraction"] < 0.95
        params.append(torch.cat([p.detach().flatten() for p in policy.trainable_parameters()]))
    # before the fix, Dr.GRPO divided by each micro-batch's padded width; a sequence ratio
    # taken per micro-batch would cut a two-row trajectory in two
    for other in params[1:]:
        torch.testing.assert_close(other, params[0], atol=1e-6, rtol=1e-5)


def test_seq_mean_counts_a_trajectory_once_when_its_turns_are_separate_samples(
        tiny_dir: Path, tmp_path: Path) -> None:
    def traj(turns: int, reward: float) -> Trajectory:  # every turn starts a new sample
        return Trajectory("e", "t", [Turn("a", [40, 41], [0.0, 0.0], prompt_ids=[30, 31])
                                     for _ in range(turns)],
                          final_reward=reward, group_id="g", outcome="success")

    cfg = grpo_config(tmp_path, tiny_dir, loss_agg="seq-mean-token-sum")
    policy = load_policy(cfg.model)
    batch = _batch(tiny_dir, [[traj(3, 1.0), traj(1, 0.0)]], policy)
    assert len(batch) == 4
    adv = batch.advantages.amax(-1)[0]  # +a for the 3-turn episode, -a for the other
    sgd = torch.optim.SGD(policy.trainable_parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(sgd, lambda _: 1.0)
    out = policy_update(policy, sgd, scheduler, batch, cfg.update, torch.Generator().manual_seed(0))
    # ratio 1: per trajectory the loss is -A x its tokens; mean over the 2 trajectories
    # (before the fix: over the 4 samples, -1/2 of this)
    assert out["policy_loss"] == pytest.approx(float((-adv * 6 + adv * 2) / 2), rel=1e-5)


def test_the_lr_schedule_ends_even_when_batches_give_fewer_mini_batches(
        tiny_dir: Path, tmp_path: Path) -> None:
    # 3 steps x 4 planned mini-batches, but each batch holds only 2 samples
    groups = [synthetic_groups(tiny_dir, 1, 2, seed=s) for s in range(3)]
    cfg = grpo_config(tmp_path / "run", tiny_dir, total_steps=3, groups_per_step=1,
                      num_mini_batches=4, export_final=False, rollout={"group_size": 2},
                      optim={"schedule": "linear", "lr": 1e-3})
    trainer = GRPOTrainer(cfg, source=ReplaySource(groups), echo=None)
    trainer.train()
    assert trainer.scheduler.last_epoch == cfg.total_optimizer_steps  # 12; before the fix: 6
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def _trained_lora(cfg: GRPOConfig) -> Policy:
    """A LoRA policy whose adapter is not zero (a fresh one is: B = 0 hides its dropout)."""
    policy = load_policy(cfg.model)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen))
    return policy


def test_lora_dropout_is_off_and_old_logprobs_are_taken_in_eval_mode(
        tiny_dir: Path, tmp_path: Path) -> None:
    lora = {"lora": True, "lora_r": 4, "lora_dropout": 0.3}
    cfg = grpo_config(tmp_path / "a", tiny_dir, total_steps=1, export_final=False, model=lora)
    assert cfg.disable_dropout  # the default for RL, as in TRL
    history = GRPOTrainer(cfg, policy=_trained_lora(cfg), echo=None).train()
    assert history[0]["ratio_mean"] == pytest.approx(1.0, abs=1e-3)
    assert history[0]["approx_kl"] == pytest.approx(0.0, abs=1e-5)
    # with dropout kept, the proximal (old) logprobs still come from eval mode: at step 0
    # they are the sampler's, so the behaviour->proximal weight is exactly 1
    cfg = dataclasses.replace(cfg, run_dir=str(tmp_path / "b"), disable_dropout=False,
                              tis_cap=2.0)
    history = GRPOTrainer(cfg, policy=_trained_lora(cfg), echo=None).train()
    assert history[0]["tis_weight_mean"] == pytest.approx(1.0, abs=1e-4)
    assert history[0]["approx_kl"] > 1e-3  # the training forward itself does use dropout


def test_kl_that_does_nothing_is_refused(tiny_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="k1 in the loss has zero expected gradient"):
        grpo_config(tmp_path, tiny_dir, kl_coef=0.1, kl_estimator="k1")
    cfg = train_config(PPOConfig, tmp_path, tiny_dir, kl_coef=0.1, kl_in="reward")
    with pytest.raises(ConfigError, match="does not support kl_in: reward"):
        PPOTrainer(cfg, source=ReplaySource([]), echo=None)


def test_kl_in_the_reward_is_subtracted_before_the_advantages(tiny_dir: Path,
                                                               tmp_path: Path) -> None:
    groups = synthetic_groups(tiny_dir, 2, 4, seed=7)
    cfg = grpo_config(tmp_path / "run", tiny_dir, kl_coef=0.5, kl_in="reward",
                      kl_estimator="k1")
    trainer = GRPOTrainer(cfg, source=ReplaySource([groups]), echo=None)
    with torch.no_grad(), trainer.policy.reference() as ref:  # sampler away from the reference
        for p in ref.parameters():
            p.add_(0.05 * torch.randn_like(p))
    trajs = [t for g in groups for t in g]
    batch, metrics = trainer.make_batch(trajs)
    assert batch.ref_logprobs is not None
    kl = torch.where(batch.loss_mask, batch.behaviour_logprobs - batch.ref_logprobs, 0.0).sum(-1)
    rewards = torch.tensor([t.final_reward for t in trajs])
    expected = grpo_advantages(rewards - 0.5 * kl, batch.group_ids)
    assert metrics["kl_reward"] == pytest.approx(float(kl.mean()), rel=1e-5)
    assert float(kl.abs().mean()) > 0.01
    first_action = batch.loss_mask.float().argmax(-1, keepdim=True)  # one sample per episode
    got = batch.advantages.gather(1, first_action).squeeze(1)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_turns_with_ids_but_no_aligned_logprobs_are_dropped_and_counted() -> None:
    def traj(logprobs: list[float] | None) -> Trajectory:
        return Trajectory("e", "t", [Turn("a", [5, 6], logprobs, prompt_ids=[1, 2])],
                          final_reward=1.0, group_id="g", outcome="success")

    kept = traj([-0.5, -0.5])
    batch, stats = build_batch([kept, traj(None), traj([-0.5])], pad_id=0,
                               advantage_fn=grpo_advantages)
    # before the fix both were trained against a behaviour logprob of 0 (ratio e^logp)
    assert (stats.trajectories, stats.dropped_no_logprobs, len(batch)) == (1, 2, 1)
    assert build_batch([traj(None)], pad_id=0, require_logprobs=False)[1].trajectories == 1  # SFT


def test_a_checkpoint_keeps_the_samplers_seed_counter(tiny_dir: Path, tmp_path: Path) -> None:
    cfg = grpo_config(tmp_path / "run", tiny_dir, total_steps=1, export_final=False)
    first = GRPOTrainer(cfg, echo=None)
    first.train()
    second = GRPOTrainer(cfg, echo=None)
    state = load_checkpoint(latest_checkpoint(tmp_path / "run"), policy=second.policy,
                            optimizer=second.optimizer, scheduler=second.scheduler)
    calls = state["sampler"]["calls"]  # generate batch k is seeded with seed + k
    assert 0 < calls <= first.agent.stats.calls
    second.load_checkpoint_state(state)
    # before the fix the resumed agent started again at seed + 0, replaying old draws
    assert second.agent.stats.calls == calls
    second.agent.close()


def test_the_mismatch_metrics_cover_every_mini_batch(tiny_dir: Path, tmp_path: Path) -> None:
    groups = synthetic_groups(tiny_dir, 2, 4, seed=3)
    cfg = grpo_config(tmp_path, tiny_dir, num_mini_batches=4, micro_batch_size=2)
    policy = load_policy(cfg.model)
    batch = _batch(tiny_dir, groups, policy)
    shift = torch.linspace(0.1, 0.8, len(batch))[:, None]  # row i: the sampler is off by shift_i
    behaviour = torch.where(batch.loss_mask, batch.behaviour_logprobs - shift, 0.0)
    batch = dataclasses.replace(batch, behaviour_logprobs=behaviour)
    sgd = torch.optim.SGD(policy.trainable_parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(sgd, lambda _: 1.0)
    out = policy_update(policy, sgd, scheduler, batch, cfg.update, torch.Generator().manual_seed(0))
    tokens = batch.loss_mask.sum(-1, keepdim=True).float()
    # over the whole batch, before any update; before the fix: the first mini-batch's 2 rows
    assert out["mismatch_abs_mean"] == pytest.approx(float((shift * tokens).sum() / tokens.sum()),
                                                     rel=1e-4)
    assert out["mismatch_ratio_mean"] == pytest.approx(
        float((shift.exp() * tokens).sum() / tokens.sum()), rel=1e-4)
    assert out["mismatch_abs_max"] == pytest.approx(0.8, rel=1e-4)
