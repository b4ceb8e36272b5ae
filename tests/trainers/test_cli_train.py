"""``toolgym train | sft | plot``: config resolution, errors, and kill -9 then --resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.trainers.toy_env import ENV_ID, MODULE
from toolgym.cli.train import app
from toolgym.rollout.trajectory import read_jsonl
from toolgym.trainers.checkpoint import latest_checkpoint, load_checkpoint
from toolgym.trainers.metrics import read_metrics
from toolgym.trainers.policy import ModelConfig, load_policy

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def write_config(tmp_path: Path, model_dir: Path, **fields: object) -> Path:
    cfg = {"algorithm": "grpo", "run_dir": str(tmp_path / "run"), "total_steps": 15,
           "groups_per_step": 2, "save_every": 3, "keep_last": 2, "tensorboard": False,
           "imports": [MODULE], "model": {"path": str(model_dir)}, "optim": {"lr": 1e-2},
           "rollout": {"env_id": ENV_ID, "group_size": 4, "concurrency": 16},
           "sampling": {"max_new_tokens": 4}, **fields}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_dry_run_prints_the_resolved_config_with_help(tiny_dir: Path, tmp_path: Path) -> None:
    path = write_config(tmp_path, tiny_dir)
    result = runner.invoke(app, ["train", str(path), "--set", "optim.lr=3e-4",
                                 "--set", "advantage_estimator=rloo", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "lr: 0.0003  # Peak learning rate" in result.output
    assert "advantage_estimator: rloo" in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "optim.lrr=1"], "Did you mean 'optim.lr'?"),
    (["--set", "algorithm=ppo"], "Unknown config key 'algorithm'"),
])
def test_config_errors_exit_2_with_the_fix(tiny_dir: Path, tmp_path: Path, args: list[str],
                                           message: str) -> None:
    result = runner.invoke(app, ["train", str(write_config(tmp_path, tiny_dir)), *args,
                                 "--dry-run"])
    assert result.exit_code == 2 and message in result.output, result.output


def test_an_unknown_algorithm_names_the_valid_ones(tiny_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(write_config(tmp_path, tiny_dir, algorithm="ppo2")),
                                 "--dry-run"])
    assert result.exit_code == 2 and "Did you mean 'ppo'? Valid names: grpo" in result.output


def test_sft_dry_run(tmp_path: Path) -> None:
    path = tmp_path / "sft.yaml"
    path.write_text(yaml.safe_dump({"env_id": ENV_ID, "total_steps": 5}))
    result = runner.invoke(app, ["sft", str(path), "--dry-run"])
    assert result.exit_code == 0 and "total_steps: 5" in result.output


def _train_process(config: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "toolgym.cli.train", "train", str(config),
                             *extra], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def test_kill_9_mid_training_then_resume_loses_at_most_the_unsaved_steps(
        tiny_dir: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, tiny_dir)
    run = tmp_path / "run"
    proc = _train_process(config)
    deadline = time.monotonic() + 120
    while len(read_metrics(run)) < 7 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    assert alive, out.decode()[-3000:]
    logged = len(read_metrics(run))
    ckpt = latest_checkpoint(run)
    assert ckpt is not None
    saved = int(ckpt.name.split("_")[1])
    assert 0 < logged - saved <= 3 + 1  # save_every, plus a step logged while saving
    load_checkpoint(ckpt, policy=load_policy(ModelConfig(path=str(tiny_dir))))  # not corrupt
    list(read_jsonl(run / "trajectories.jsonl"))  # whole lines (a torn last one is skipped)

    proc = _train_process(config, "--resume")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out.decode()[-3000:]
    assert f"resumed at step {saved}" in out.decode()
    steps = [r["step"] for r in read_metrics(run)]
    assert steps == list(range(1, 16))  # no step lost twice, none logged twice
    trained = [t.info["train_step"] for t in read_jsonl(run / "trajectories.jsonl")]
    assert sorted(set(trained)) == list(range(1, 16)) and len(trained) == 15 * 2 * 4
    assert latest_checkpoint(run).name == "step_00000015"
    assert (run / "final" / "config.json").exists()


def test_plot_writes_learning_curves(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from toolgym.trainers.metrics import MetricsLogger

    logger = MetricsLogger(tmp_path, tensorboard=False)
    for step in range(1, 13):
        logger.log(step, {"reward_mean": step / 12, "success_rate": step / 24, "loss": 1 / step,
                          "entropy": 2.0, "grad_norm": 0.5, "lr": 1e-3})
    result = runner.invoke(app, ["plot", str(tmp_path)])
    assert result.exit_code == 0, result.output
    pngs = sorted(p.name for p in (tmp_path / "plots").glob("*.png"))
    assert pngs == ["kl_entropy.png", "loss.png", "optimisation.png", "reward.png"]
    assert all((tmp_path / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_plot_of_a_directory_without_metrics_is_an_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["plot", str(tmp_path)])
    assert result.exit_code == 2 and "No metrics" in result.output
