"""Supervised warm start on trajectories, with the RL trainers' masking.

RL only sharpens decisions the policy already gets right some of the time
(DESIGN.md), so a run usually starts with SFT on demonstrations: the
trajectories of an env's oracle reference agent, or any trajectory JSONL
(``toolgym eval`` logs, a previous run's ``trajectories.jsonl``). The loss is
the mean negative log-likelihood of the *action* tokens only, the same
``loss_mask`` the RL loss uses: prompts and tool outputs are context, never
targets. The result is exported as an ordinary model directory
(``RUN_DIR/final``) that a GRPO config names as ``model.path``.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from toolgym._sync import run_sync
from toolgym.errors import ConfigError
from toolgym.rollout.trajectory import Trajectory, read_jsonl
from toolgym.trainers.batching import Batch, build_batch
from toolgym.trainers.checkpoint import load_checkpoint
from toolgym.trainers.config import option
from toolgym.trainers.logprobs import token_logprobs
from toolgym.trainers.losses import masked_sum
from toolgym.trainers.metrics import MetricsLogger
from toolgym.trainers.optim import OptimConfig, build_optimizer, build_scheduler
from toolgym.trainers.policy import ModelConfig, Policy, load_policy
from toolgym.trainers.run_dir import RunDir, seed_everything

__all__ = ["SFTConfig", "SFTTrainer", "collect_demonstrations", "sft_loss"]


@dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning on trajectories (loss on action tokens only)."""

    run_dir: str = option("runs/sft", "Where metrics, checkpoints and the final model go.")
    seed: int = option(0, "Seeds Python, NumPy and torch, and the order of the examples.")
    total_steps: int = option(200, "Optimiser steps.")
    batch_size: int = option(32, "Training sequences per optimiser step.")
    micro_batch_size: int = option(32, "Sequences per forward/backward pass.")
    max_length: int | None = option(None, "Cut training sequences to this many tokens.")
    data_path: str = option("", "Trajectory JSONL to learn from; empty: collect demonstrations "
                            "from env_id's reference agent.")
    env_id: str = option("", "Env whose reference agent demonstrates (when data_path is empty).")
    imports: tuple[str, ...] = option((), "Modules imported first (they register envs).")
    demonstrations: int = option(256, "Episodes of the reference agent to collect.")
    demo_kind: str = option("oracle", "Which reference actions to imitate.")
    only_success: bool = option(True, "Train only on episodes whose outcome is success.")
    num_threads: int = option(1, "torch.set_num_threads.")
    save_every: int = option(0, "Checkpoint every N steps (and at the end); 0: only at the end.")
    keep_last: int = option(2, "Checkpoints to keep.")
    tensorboard: bool = option(True, "Also log to run_dir/tb when tensorboard is installed.")
    export_final: bool = option(True, "Write an ordinary model directory to run_dir/final.")
    model: ModelConfig = option(help="The model to fine-tune.", factory=ModelConfig)
    optim: OptimConfig = option(help="Optimiser and LR schedule.", factory=OptimConfig)

    def __post_init__(self) -> None:
        for name in ("total_steps", "batch_size", "micro_batch_size", "num_threads", "keep_last"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1; got {getattr(self, name)}.")


def sft_loss(policy: Policy, mb: Batch, denominator: float) -> tuple[Tensor, float]:
    """Summed NLL of ``mb``'s action tokens divided by ``denominator`` (the batch's token count).

    Returns:
        ``(loss, summed_nll)``; summing ``loss`` over micro-batches gives the
        token-mean NLL of the whole batch.
    """
    logp, _ = token_logprobs(policy.model, mb.input_ids, mb.attention_mask)
    nll = -masked_sum(logp, mb.loss_mask)
    return nll / denominator, float(nll.detach())


async def collect_demonstrations(env_id: str, policy: Policy, n: int, *, kind: str = "oracle",
                                 split: str | None = "train", seed: int = 0) -> list[Trajectory]:
    """Play ``n`` episodes of ``env_id`` with its reference agent, with exact token ids."""
    from toolgym.envs.factory import EnvFactory
    from toolgym.rollout.manager import RolloutConfig, RolloutManager
    from toolgym.rollout.reference import ReferenceAgent

    envs = EnvFactory(env_id)
    await envs.adescribe()
    ids = envs.task_ids(split)
    agent = ReferenceAgent(env_id, kind, chat=policy.chat)
    manager = RolloutManager(RolloutConfig(env_id=env_id, group_size=1, seed=seed), agent,
                             chat=policy.chat, envs=envs)
    try:
        out = [t async for t in manager.run(ids, samples=math.ceil(n / len(ids)))]
    finally:
        await manager.aclose()
        await envs.aclose()
        await agent.aclose()
    return sorted(out, key=lambda t: (t.task_id, t.seed or 0))[:n]


class SFTTrainer:
    """Next-token training on the action tokens of trajectories.

    Args:
        config: The run's config.
        policy: A loaded policy; default: :func:`load_policy` on ``config.model``.
        trajectories: Demonstrations; default: from ``data_path`` or collected.
        echo: Where the config header and step lines go (None: silent).
    """

    def __init__(self, config: SFTConfig, *, policy: Policy | None = None,
                 trajectories: Sequence[Trajectory] | None = None,
                 echo: Callable[[str], None] | None = print) -> None:
        self.config = config
        for module in config.imports:
            importlib.import_module(module)
        torch.set_num_threads(config.num_threads)
        seed_everything(config.seed)
        self.policy = policy or load_policy(config.model)
        self.trajectories = list(trajectories) if trajectories is not None else None
        self.optimizer = build_optimizer(self.policy.trainable_parameters(), config.optim)
        self.scheduler = build_scheduler(self.optimizer, config.optim, config.total_steps)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.run = RunDir(config.run_dir, logs=(MetricsLogger.FILE,), keep_last=config.keep_last)
        self.step = 0
        self.order = torch.zeros(0, dtype=torch.long)
        self.cursor = 0
        self.history: list[dict[str, float]] = []
        self._echo = echo

    async def _data(self) -> Batch:
        if self.trajectories is None:
            if self.config.data_path:
                self.trajectories = list(read_jsonl(self.config.data_path))
            elif self.config.env_id:
                self.trajectories = await collect_demonstrations(
                    self.config.env_id, self.policy, self.config.demonstrations,
                    kind=self.config.demo_kind, seed=self.config.seed)
            else:
                raise ConfigError("SFT needs data: set data_path (trajectory JSONL) or env_id.")
        usable = [t for t in self.trajectories
                  if not self.config.only_success or t.outcome == "success"]
        batch, _ = build_batch(usable, pad_id=self.policy.pad_id, max_length=self.config.max_length,
                               require_logprobs=False)
        if len(batch) == 0:
            raise ConfigError(f"No usable demonstrations among {len(self.trajectories)} "
                              "trajectories (only_success drops failed ones).")
        return batch

    def _next_index(self, n: int) -> Tensor:
        """The next ``batch_size`` example indices, reshuffling at each epoch's end."""
        out = []
        for _ in range(self.config.batch_size):
            if self.cursor >= len(self.order):
                self.order, self.cursor = torch.randperm(n, generator=self.generator), 0
            out.append(int(self.order[self.cursor]))
            self.cursor += 1
        return torch.tensor(out, dtype=torch.long)

    def train_step(self, data: Batch) -> dict[str, float]:
        """One optimiser step on the next batch of examples."""
        start = time.perf_counter()
        batch = data.select(self._next_index(len(data)))
        denominator = max(1.0, float(batch.loss_mask.sum()))
        self.policy.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        nll = 0.0
        size = self.config.micro_batch_size
        for first in range(0, len(batch), size):
            rows = torch.arange(first, min(len(batch), first + size))
            loss, summed = sft_loss(self.policy, batch.select(rows).to(self.policy.device),
                                    denominator)
            loss.backward()
            nll += summed
        self.policy.model.eval()
        norm = torch.nn.utils.clip_grad_norm_(self.policy.trainable_parameters(),
                                              self.config.optim.max_grad_norm or float("inf"))
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return {"loss": nll / denominator, "grad_norm": float(norm), "lr": lr,
                "tokens": denominator, "step_s": time.perf_counter() - start}

    def train(self, *, resume: bool = False) -> list[dict[str, float]]:
        """Blocking twin of :meth:`atrain`."""
        return run_sync(self.atrain(resume=resume))

    async def atrain(self, *, resume: bool = False) -> list[dict[str, float]]:
        """Train for ``total_steps``; with ``resume`` continue from the latest checkpoint."""
        data = await self._data()
        logger = self._open_run(resume)
        try:
            while self.step < self.config.total_steps:
                metrics = await asyncio.to_thread(self.train_step, data)
                self.history.append(metrics)
                logger.log(self.step, metrics)
                if self._echo is not None and (self.step % 10 == 0 or self.step == 1):
                    self._echo(f"sft step {self.step}/{self.config.total_steps}  "
                               f"nll {metrics['loss']:.4f}  lr {metrics['lr']:.2e}")
                every = self.config.save_every
                if (every and self.step % every == 0) or self.step == self.config.total_steps:
                    await asyncio.to_thread(self.save)
        finally:
            logger.close()
        if self.config.export_final:
            await asyncio.to_thread(self.policy.merge_and_save, self.run.path / "final")
        return self.history

    def _open_run(self, resume: bool) -> MetricsLogger:
        checkpoint = self.run.start(self.config, resume=resume)
        if checkpoint is not None:
            self._restore(checkpoint)
        self.run.announce(self._echo, "SFTTrainer", self.config,
                          resumed_at=self.step if checkpoint else None)
        return MetricsLogger(self.run.path, tensorboard=self.config.tensorboard)

    def save(self) -> Path:
        """Checkpoint weights, optimiser, schedule, RNG and the position in the data."""
        state: dict[str, Any] = {"step": self.step, **self.run.capture(self.generator),
                                 "order": self.order.clone(), "cursor": self.cursor}
        return self.run.save(self.step, policy=self.policy, optimizer=self.optimizer,
                             scheduler=self.scheduler, state=state)

    def _restore(self, path: Path) -> None:
        state = load_checkpoint(path, policy=self.policy, optimizer=self.optimizer,
                                scheduler=self.scheduler)
        self.step, self.cursor = int(state["step"]), int(state["cursor"])
        self.order = state["order"]
        self.run.restore(state, self.generator)
