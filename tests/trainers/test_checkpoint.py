"""Checkpoints: exact round trip, RNG states, pruning, and a kill -9 in the middle of a save."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

from toolgym.trainers.checkpoint import (
    capture_rng,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from toolgym.trainers.optim import OptimConfig, build_optimizer, build_scheduler
from toolgym.trainers.policy import ModelConfig, Policy, load_policy

REPO = Path(__file__).resolve().parents[2]


def parts(model_dir: Path, lora: bool = False) -> tuple[Policy, torch.optim.Optimizer, object]:
    policy = load_policy(ModelConfig(path=str(model_dir), lora=lora, lora_r=4))
    cfg = OptimConfig(lr=1e-2, warmup_steps=2)
    opt = build_optimizer(policy.trainable_parameters(), cfg)
    return policy, opt, build_scheduler(opt, cfg, 10)


def one_step(policy: Policy, opt: torch.optim.Optimizer, sched: object) -> None:
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    loss = policy.model(input_ids=ids, labels=ids).loss
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()  # type: ignore[attr-defined]


def draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_round_trip_restores_weights_optimizer_schedule_and_rng(tiny_dir: Path,
                                                                tmp_path: Path) -> None:
    policy, opt, sched = parts(tiny_dir, lora=True)
    one_step(policy, opt, sched)
    state = {"step": 1, "rng": capture_rng(), "extra": [1, 2]}
    save_checkpoint(tmp_path, 1, policy=policy, optimizer=opt, scheduler=sched, state=state)
    expected_draws = draws()
    one_step(policy, opt, sched)
    expected = policy.trainable_state_dict()

    fresh, opt2, sched2 = parts(tiny_dir, lora=True)
    loaded = load_checkpoint(latest_checkpoint(tmp_path), policy=fresh, optimizer=opt2,
                             scheduler=sched2)
    assert loaded["step"] == 1 and loaded["extra"] == [1, 2]
    restore_rng(loaded["rng"])
    assert draws() == expected_draws
    assert sched2.last_epoch == 1  # type: ignore[attr-defined]
    one_step(fresh, opt2, sched2)
    for name, value in fresh.trainable_state_dict().items():
        assert torch.equal(value, expected[name]), name


def test_only_the_newest_keep_last_checkpoints_stay(tiny_dir: Path, tmp_path: Path) -> None:
    policy, opt, sched = parts(tiny_dir)
    for step in (2, 4, 6, 8):
        save_checkpoint(tmp_path, step, policy=policy, optimizer=opt, scheduler=sched,
                        state={"step": step}, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000006", "step_00000008"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "step_00000006", "step_00000008"]


def test_no_checkpoint_means_none(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path) is None
    (tmp_path / "checkpoints" / ".tmp-step_00000003-1").mkdir(parents=True)
    assert latest_checkpoint(tmp_path) is None


KILL_DURING_SAVE = """
import os, signal, sys, torch
sys.path.insert(0, {repo!r})
from toolgym.trainers import checkpoint
from toolgym.trainers.optim import OptimConfig, build_optimizer, build_scheduler
from toolgym.trainers.policy import ModelConfig, load_policy
policy = load_policy(ModelConfig(path={model!r}))
opt = build_optimizer(policy.trainable_parameters(), OptimConfig())
sched = build_scheduler(opt, OptimConfig(), 10)
checkpoint.save_checkpoint({run!r}, 1, policy=policy, optimizer=opt, scheduler=sched,
                           state={{"step": 1}})
with torch.no_grad():
    for p in policy.trainable_parameters():
        p.add_(1.0)
real_save = torch.save
def dying_save(obj, path, *a, **k):
    real_save(obj, path, *a, **k)
    os.kill(os.getpid(), signal.SIGKILL)  # after optimizer.pt, before state.pt and the rename
checkpoint.torch.save = dying_save
checkpoint.save_checkpoint({run!r}, 2, policy=policy, optimizer=opt, scheduler=sched,
                           state={{"step": 2}})
"""


def test_kill_9_during_a_save_leaves_the_previous_checkpoint_intact(tiny_dir: Path,
                                                                     tmp_path: Path) -> None:
    script = KILL_DURING_SAVE.format(repo=str(REPO), model=str(tiny_dir), run=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    leftovers = [p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".tmp")]
    assert leftovers, "the kill should have struck inside the save"
    latest = latest_checkpoint(tmp_path)
    assert latest is not None and latest.name == "step_00000001"
    policy, opt, sched = parts(tiny_dir)
    state = load_checkpoint(latest, policy=policy, optimizer=opt, scheduler=sched)
    assert state == {"step": 1}
    base = load_policy(ModelConfig(path=str(tiny_dir)))
    for name, value in policy.trainable_state_dict().items():  # the pre-kill weights, not +1
        assert torch.equal(value, base.trainable_state_dict()[name]), name
    # the next save clears the leftovers
    save_checkpoint(tmp_path, 3, policy=policy, optimizer=opt, scheduler=sched, state={})
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["step_00000001", "step_00000003"]
