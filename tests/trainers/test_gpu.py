"""The trainer on CUDA: short GRPO and PPO runs and an exact checkpoint round trip on the GPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.trainers.conftest import grpo_config, train_config
from toolgym.trainers.checkpoint import latest_checkpoint, load_checkpoint
from toolgym.trainers.grpo import GRPOTrainer
from toolgym.trainers.policy import ModelConfig, load_policy
from toolgym.trainers.ppo import PPOConfig, PPOTrainer

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_grpo_steps_on_cuda_and_resume_weights(tiny_dir: Path, tmp_path: Path, lora: bool) -> None:
    cfg = grpo_config(tmp_path / "run", tiny_dir, total_steps=3,
                      model={"device": "cuda", "lora": lora, "lora_r": 4})
    trainer = GRPOTrainer(cfg, echo=None)
    history = trainer.train()
    assert trainer.policy.device.type == "cuda" and len(history) == 3
    assert history[0]["ratio_mean"] == pytest.approx(1.0, abs=1e-2)
    fresh = load_policy(ModelConfig(path=str(tiny_dir), device="cuda", lora=lora, lora_r=4))
    load_checkpoint(latest_checkpoint(tmp_path / "run"), policy=fresh)
    for name, value in trainer.policy.trainable_state_dict().items():
        assert torch.equal(value, fresh.trainable_state_dict()[name]), name


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_ppo_steps_on_cuda_with_the_value_head_there(tiny_dir: Path, tmp_path: Path,
                                                     lora: bool) -> None:
    cfg = train_config(PPOConfig, tmp_path / "run", tiny_dir, total_steps=2,
                       model={"device": "cuda", "lora": lora, "lora_r": 4})
    trainer = PPOTrainer(cfg, echo=None)
    history = trainer.train()
    assert trainer.value_head.linear.weight.device.type == "cuda"
    assert all("value_loss" in h for h in history)
    assert torch.count_nonzero(trainer.value_head.linear.weight) > 0
