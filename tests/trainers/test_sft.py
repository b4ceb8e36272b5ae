"""SFT: loss on action tokens only, demonstrations from a reference agent, exact resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

from tests.trainers.conftest import synthetic_groups
from tests.trainers.toy_env import ENV_ID, MODULE, digit_share
from toolgym.agents import Conversation, SamplingParams
from toolgym.agents.hf import HFAgent
from toolgym.rollout.trajectory import write_jsonl
from toolgym.trainers.batching import Batch, build_batch
from toolgym.trainers.config import from_dict
from toolgym.trainers.metrics import read_metrics
from toolgym.trainers.policy import ModelConfig, load_policy
from toolgym.trainers.sft import SFTConfig, SFTTrainer, sft_loss


def test_the_loss_is_the_mean_nll_of_action_tokens_only(tiny_dir: Path) -> None:
    trajs = [t for g in synthetic_groups(tiny_dir, 2, 2, seed=3) for t in g]
    policy = load_policy(ModelConfig(path=str(tiny_dir)))
    batch, _ = build_batch(trajs, pad_id=policy.pad_id)
    loss, _ = sft_loss(policy, batch, float(batch.loss_mask.sum()))
    expected, count = torch.tensor(0.0), 0
    for t in trajs:
        s = t.samples()[0]
        with torch.no_grad():
            logits = policy.model(input_ids=torch.tensor([s.input_ids])).logits[0]
        logp = torch.log_softmax(logits[:-1], -1)
        for pos in range(1, len(s.input_ids)):
            if s.loss_mask[pos]:  # prompt and observation tokens are never targets
                expected -= logp[pos - 1, s.input_ids[pos]]
                count += 1
    assert_close(loss.detach(), expected / count, atol=1e-5, rtol=0)


def sft_config(tmp_path: Path, tiny_dir: Path, **fields: object) -> SFTConfig:
    data = {"run_dir": str(tmp_path / "sft"), "total_steps": 60, "batch_size": 16,
            "env_id": ENV_ID, "imports": [MODULE], "demonstrations": 12, "tensorboard": False,
            "model": {"path": str(tiny_dir)}, "optim": {"lr": 1e-2}, **fields}
    return from_dict(SFTConfig, data)


def test_sft_on_oracle_demonstrations_teaches_the_task(tiny_dir: Path, tmp_path: Path) -> None:
    trainer = SFTTrainer(sft_config(tmp_path, tiny_dir), echo=None)
    history = trainer.train()
    assert len(trainer.trajectories) == 12 and all(t.trainable for t in trainer.trajectories)
    assert history[-1]["loss"] < history[0]["loss"] / 4
    agent = HFAgent(tmp_path / "sft" / "final", seed=0,
                    sampling=SamplingParams(temperature=0, max_new_tokens=6))
    try:
        turn = agent.act_sync(Conversation([{"role": "user", "content": "n3"}]))
    finally:
        agent.close()
    assert digit_share(turn.text) == 1.0, turn.text


def test_sft_resume_is_exact(tiny_dir: Path, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    trajs = [t for g in synthetic_groups(tiny_dir, 3, 3, seed=5) for t in g]
    write_jsonl(tmp_path / "demos.jsonl", trajs)
    common = {"data_path": str(tmp_path / "demos.jsonl"), "env_id": "", "total_steps": 4,
              "batch_size": 4, "micro_batch_size": 3, "save_every": 2, "export_final": False}
    straight = SFTTrainer(sft_config(tmp_path / "a", tiny_dir, **common), echo=None)
    straight.train()

    cfg = sft_config(tmp_path / "b", tiny_dir, **common)
    real_step = SFTTrainer.train_step

    def crash_at_step_3(self: SFTTrainer, data: Batch) -> dict[str, float]:
        if self.step == 2:
            raise RuntimeError("simulated crash")
        return real_step(self, data)

    monkeypatch.setattr(SFTTrainer, "train_step", crash_at_step_3)
    with pytest.raises(RuntimeError, match="simulated crash"):
        SFTTrainer(cfg, echo=None).train()
    monkeypatch.setattr(SFTTrainer, "train_step", real_step)
    resumed = SFTTrainer(cfg, echo=None)
    assert len(resumed.train(resume=True)) == 2 and resumed.step == 4
    for name, value in straight.policy.trainable_state_dict().items():
        assert torch.equal(value, resumed.policy.trainable_state_dict()[name]), name
    assert [r["step"] for r in read_metrics(tmp_path / "b" / "sft")] == [1, 2, 3, 4]
