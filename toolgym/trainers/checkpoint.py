"""Checkpoints that survive ``kill -9``: written aside, fsynced, then renamed into place.

A checkpoint is a directory ``RUN_DIR/checkpoints/step_00000042/`` holding

- ``model/``: the trainable weights in Hugging Face format (a LoRA adapter
  directory, or a full model directory), loadable on their own;
- ``optimizer.pt``: optimiser and LR-scheduler state;
- ``state.pt``: step, RNG states (Python, NumPy, torch, CUDA, the trainer's own
  generator) and the rollout side's state (its RNG and policy version);
- ``meta.json``: step and format, written last.

Everything is first written to ``.tmp-step_...``, each file and directory is
fsynced, and only then is the directory renamed to its final name. A rename
within one filesystem is atomic, so a process killed at any moment leaves
either the complete new checkpoint or none: the previous one is untouched,
and :func:`latest_checkpoint` ignores leftovers (they are removed at the next
save). Old checkpoints beyond ``keep_last`` are renamed to ``.trash-...``
before they are deleted, so a half-deleted directory never looks valid.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toolgym.trainers.policy import Policy

__all__ = ["capture_rng", "latest_checkpoint", "list_checkpoints", "load_checkpoint",
           "restore_rng", "save_checkpoint"]

FORMAT = 1
_NAME = re.compile(r"^step_(\d{8})$")


def checkpoints_root(run_dir: str | Path) -> Path:
    """``RUN_DIR/checkpoints`` (accepts that directory itself too)."""
    run_dir = Path(run_dir)
    return run_dir if run_dir.name == "checkpoints" else run_dir / "checkpoints"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = checkpoints_root(run_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir()
             if p.is_dir() and _NAME.match(p.name) and (p / "meta.json").is_file()]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))  # type: ignore[union-attr]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


# ---------------------------------------------------------------------- RNG
def capture_rng() -> dict[str, Any]:
    """Python, NumPy, torch and CUDA RNG states, readable by ``torch.load(weights_only=True)``."""
    name, key, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(np.asarray(key).copy()), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Undo :func:`capture_rng`: the next random numbers are those that would have come."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, key.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------- save
def _fsync_tree(path: Path) -> None:
    """fsync every file under ``path``, then every directory, deepest first."""
    dirs = []
    for root, _, files in os.walk(path):
        dirs.append(root)
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for d in reversed(dirs):
        _fsync_dir(Path(d))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    """Delete a directory by first renaming it to ``.trash-*`` (never half-deleted and valid)."""
    trash = path.with_name(f".trash-{path.name}-{os.getpid()}-{time.monotonic_ns()}")
    os.rename(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _clean_leftovers(root: Path) -> None:
    for p in root.iterdir():
        if p.name.startswith((".tmp-", ".trash-")):
            shutil.rmtree(p, ignore_errors=True)


def save_checkpoint(
    run_dir: str | Path,
    step: int,
    *,
    policy: Policy,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    state: dict[str, Any],
    keep_last: int = 2,
) -> Path:
    """Write checkpoint ``step`` atomically, then keep only the newest ``keep_last``.

    Args:
        run_dir: The run directory (checkpoints go to ``run_dir/checkpoints``).
        step: The number of completed training steps.
        policy: Its trainable weights are saved.
        optimizer: Saved with ``scheduler`` in ``optimizer.pt``.
        scheduler: An LR scheduler with ``state_dict``.
        state: Trainer state (step counters, RNG, rollout state); anything
            ``torch.save`` writes and ``torch.load(weights_only=True)`` reads.
        keep_last: Complete checkpoints to keep (at least 1).

    Returns:
        The checkpoint's directory.
    """
    root = checkpoints_root(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(root)
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    tmp.mkdir()
    policy.save(tmp / "model")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
               tmp / "optimizer.pt")
    torch.save(state, tmp / "state.pt")
    meta = {"step": step, "format": FORMAT, "time": time.time(), "lora": policy.is_lora}
    (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    _fsync_tree(tmp)
    if final.exists():  # re-saving a step (after a resume): replace it whole
        _remove(final)
    os.rename(tmp, final)
    _fsync_dir(root)
    for old in list_checkpoints(root)[: -max(1, keep_last)]:
        _remove(old)
    return final


def load_checkpoint(
    path: str | Path, *, policy: Policy, optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
) -> dict[str, Any]:
    """Load weights (and optimiser/scheduler state) from ``path``; return its ``state``."""
    path = Path(path)
    policy.load(path / "model")
    if optimizer is not None or scheduler is not None:
        opt = torch.load(path / "optimizer.pt", map_location=policy.device, weights_only=True)
        if optimizer is not None:
            optimizer.load_state_dict(opt["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(opt["scheduler"])
    return torch.load(path / "state.pt", map_location="cpu", weights_only=True)
