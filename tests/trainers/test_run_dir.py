"""RunDir: what every trainer's run directory does at a start, a checkpoint and a resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from toolgym.errors import ConfigError
from toolgym.trainers.run_dir import RunDir


def _fake_checkpoint(run: Path, step: int) -> None:
    ckpt = run / "checkpoints" / f"step_{step:08d}"
    ckpt.mkdir(parents=True)
    (ckpt / "meta.json").write_text("{}")


def test_a_fresh_start_empties_the_logs_and_writes_the_config(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text("old\n")
    run = RunDir(tmp_path, logs=("metrics.jsonl", "trajectories.jsonl"))
    assert run.start({"seed": 3}, resume=False) is None
    assert (tmp_path / "metrics.jsonl").read_text() == ""
    assert not (tmp_path / "trajectories.jsonl").exists()  # none yet: nothing to empty
    assert (tmp_path / "config.yaml").read_text() == "seed: 3\n"


def test_a_run_with_a_checkpoint_is_refused_unless_resumed(tmp_path: Path) -> None:
    _fake_checkpoint(tmp_path, 4)
    (tmp_path / "metrics.jsonl").write_text("step 1\n")
    run = RunDir(tmp_path, logs=("metrics.jsonl",))
    with pytest.raises(ConfigError, match="step_00000004: pass --resume"):
        run.start({}, resume=False)
    assert run.start({}, resume=True) == tmp_path / "checkpoints" / "step_00000004"
    assert (tmp_path / "metrics.jsonl").read_text() == "step 1\n"  # the resume cuts it back


def test_restore_cuts_the_logs_back_and_rewinds_the_generators(tmp_path: Path) -> None:
    run = RunDir(tmp_path, logs=("metrics.jsonl",))
    run.start({}, resume=False)
    (tmp_path / "metrics.jsonl").write_text("step 1\n")
    generator = torch.Generator().manual_seed(0)
    state = run.capture(generator)
    expected = (torch.rand(2, generator=generator), torch.rand(2))
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write("step 2, after the checkpoint\n")
    run.restore(state, generator)
    assert (tmp_path / "metrics.jsonl").read_text() == "step 1\n"
    assert torch.equal(torch.rand(2, generator=generator), expected[0])
    assert torch.equal(torch.rand(2), expected[1])
