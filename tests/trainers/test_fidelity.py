"""The sampler and the trainer agree: on-policy, before any update, the ratio is 1.

Each test here failed on the code before issue 13 (acf7ae8): the trainer
recomputed logprobs with temperature only while the sampler recorded top-p
truncated ones, Dr.GRPO's divisor depended on the micro-batch, ...
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.trainers.conftest import grpo_config
from toolgym.trainers.grpo import GRPOTrainer


def test_step0_ratio_is_one_with_temperature_and_top_p(tiny_dir: Path, tmp_path: Path) -> None:
    cfg = grpo_config(tmp_path / "run", tiny_dir, total_steps=1, export_final=False,
                      sampling={"temperature": 0.7, "top_p": 0.8, "max_new_tokens": 8})
    history = GRPOTrainer(cfg, echo=None).train()
    # before the fix: 0.80 (the sampler's nucleus-renormalised logprobs against tempered ones)
    assert history[0]["ratio_mean"] == pytest.approx(1.0, abs=1e-3)
    assert history[0]["approx_kl"] == pytest.approx(0.0, abs=1e-4)
