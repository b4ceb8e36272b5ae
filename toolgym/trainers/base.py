"""The loop every token-level RL trainer shares.

One step::

    groups = await source.get_batch(groups_per_step)     # RolloutManager, in the background
                                                         # (dynamic_sampling: mixed groups only)
    await prepare(groups)                                # more rollouts, if any (VinePPO)
    batch  = build_batch(groups, advantage_fn)           # drop infra errors, pad, advantages
    policy_update(batch)                                 # micro-batches, accumulation, AdamW
    await weight_sync(policy, version + 1)               # the agent samples from new weights
    source.set_policy_version(version + 1)               # staleness is counted from here

Rollouts never stop for the trainer: the manager keeps episodes in flight
while the update runs, and the update runs in a worker thread so the event
loop keeps stepping sandboxes.

**Generation and the optimiser step never touch the same module at once.**
With ``weight_sync: shared`` (the default; no copy, best on CPU) the agent
samples from the very module that trains, and the whole update (train-mode
forward, backward, optimiser step) runs under the agent's generation lock: a
``generate`` call in progress finishes first, later ones wait until the new
weights are in place. Episodes waiting on a tool go on meanwhile. With
``weight_sync: copy`` the agent holds its own frozen copy, generation runs
*during* the update (AReaL-style overlap, twice the memory), and the new
weights are loaded between two generate batches by ``agent.update_weights``.
With ``backend: vllm`` an in-process vLLM engine samples instead (its own
copy of the weights, so ``weight_sync: copy``); ``agent.aupdate_weights``
pushes the new weights to it the same way. Any other engine plugs in through
``weight_sync=``: a coroutine function ``(policy, version) -> None``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import importlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch

from toolgym._sync import run_sync
from toolgym.agents.base import Agent, SamplingParams
from toolgym.agents.vllm_engine import VLLMConfig
from toolgym.errors import ConfigError
from toolgym.rollout.manager import RolloutConfig, RolloutManager
from toolgym.rollout.trajectory import Trajectory, write_jsonl
from toolgym.trainers.batching import AdvantageFn, Batch, build_batch, trainable_only
from toolgym.trainers.checkpoint import load_checkpoint
from toolgym.trainers.config import option
from toolgym.trainers.dynamic_sampling import draw_mixed_groups
from toolgym.trainers.losses import AggMode, ISLevel, ISMode, KLKind, RatioLevel
from toolgym.trainers.metrics import MetricsLogger, rollout_metrics
from toolgym.trainers.optim import OptimConfig, build_optimizer, build_scheduler
from toolgym.trainers.overlong import filter_overlong, punish_overlong
from toolgym.trainers.policy import ModelConfig, Policy, disable_dropout, load_policy
from toolgym.trainers.protocols import RolloutSource, SharedModelAgent, TrainableAgent
from toolgym.trainers.run_dir import RunDir, seed_everything
from toolgym.trainers.update import (
    UpdateConfig,
    ValueTerm,
    kl_in_reward,
    policy_update,
    precompute_logprobs,
)

__all__ = ["Trainer", "TrainerConfig", "WeightSync"]

WeightSync = Callable[[Policy, int], Awaitable[None]]
TRAJECTORIES_FILE = "trajectories.jsonl"


@dataclass(frozen=True)
class TrainerConfig:
    """What every token-level RL trainer needs; an algorithm's config adds its own fields."""

    run_dir: str = option("runs/train", "Where metrics, checkpoints, trajectories and the final "
                          "model go.")
    seed: int = option(0, "Seeds Python, NumPy, torch, the sampler and the update's shuffling "
                       "(rollout.seed seeds the task draws).")
    total_steps: int = option(100, "Training steps (one batch of groups each).")
    groups_per_step: int = option(16, "Prompts per step; each brings rollout.group_size episodes.")
    micro_batch_size: int = option(32, "Sequences per forward/backward pass (gradient "
                                   "accumulation up to the mini-batch).")
    num_mini_batches: int = option(1, "Optimiser steps per epoch over a batch (1: on-policy).")
    update_epochs: int = option(1, "Passes over each batch.")
    max_length: int | None = option(None, "Cut training sequences to this many tokens.")
    clip_low: float = option(0.2, "PPO clip below 1 (epsilon_low).")
    clip_high: float = option(0.2, "PPO clip above 1 (epsilon_high; DAPO's clip-higher uses 0.28).")
    dual_clip: float | None = option(None, "Dual-clip constant c > 1 for negative advantages.")
    tis_cap: float | None = option(None, "Decoupled PPO: ratio against the pre-update policy and "
                                   "an importance weight behaviour->proximal capped here (e.g. 2).")
    is_mode: ISMode = option("truncate", "With tis_cap: truncate the importance weight at the cap "
                             "(TIS) or drop the tokens / sequences above it (mask: MIS).")
    is_level: ISLevel = option("token", "With tis_cap: one weight per token, or per sequence "
                               "(the product of its token ratios).")
    ratio_level: RatioLevel = option(
        "token", "token: PPO's per-token ratio and clip; sequence: GSPO, one ratio per "
        "trajectory (the geometric mean of its token ratios) clipped as a whole; use the "
        "paper's clip_low 3e-4, clip_high 4e-4 and loss_agg seq-mean-token-mean.")
    recompute_old_logprobs: bool = option(
        False, "Centre the PPO ratio on the trainer's own log-probs of the batch, computed before "
        "the update (verl's default), instead of the sampler's; tis_cap implies it.")
    loss_agg: AggMode = option("token-mean", "How token losses become a scalar (Dr.GRPO: "
                               "seq-mean-token-sum-norm); a sequence is a trajectory.")
    loss_max_tokens: int | None = option(None, "Dr.GRPO's constant divisor of a trajectory's "
                                         "token-loss sum (seq-mean-token-sum-norm); null: "
                                         "sampling.max_new_tokens.")
    kl_coef: float = option(0.0, "Weight of the KL to the reference policy (0: no reference).")
    kl_estimator: KLKind = option("k3", "KL estimator: k1, k2 or k3 (k3 in the loss: k3's value "
                                  "with k2's gradient, clamped at 10, as verl's k3+).")
    kl_in: Literal["loss", "reward"] = option(
        "loss", "loss: kl_coef x the estimate joins the loss (k2 or k3); reward: it is "
        "subtracted from each episode's reward before the advantages (k1, InstructGPT-style; "
        "outcome-level trainers such as GRPO / RLOO).")
    entropy_coef: float = option(0.0, "Entropy bonus weight.")
    overlong_filter: bool = option(
        False, "DAPO's overlong filtering: an episode with a turn cut by sampling.max_new_tokens "
        "keeps its reward in its group's baseline, but none of its tokens is trained on "
        "(counted: batch_overlong_filtered).")
    overlong_buffer: int = option(
        0, "DAPO's soft overlong punishment: a turn longer than sampling.max_new_tokens minus "
        "this many tokens costs its episode up to overlong_penalty of (training) reward, "
        "linearly, all of it at the budget; the worst turn counts. 0: off.")
    overlong_penalty: float = option(1.0, "The soft overlong punishment at the budget.")
    dynamic_sampling: bool = option(
        False, "DAPO's dynamic sampling: drop the groups whose episodes all got the same reward "
        "(group-relative advantages 0; counted: dynamic_groups_dropped).")
    resample_rounds: int = option(
        0, "With dynamic_sampling: up to this many more rollout draws per step to refill it to "
        "groups_per_step (0: train on the groups left).")
    disable_dropout: bool = option(True, "Set every dropout of the policy (LoRA's included) to 0, "
                                   "so the trainer's log-probs are the sampler's (as TRL does).")
    weight_sync: Literal["shared", "copy"] = option(
        "shared", "shared: the agent samples from the training module (lock during updates); "
        "copy: the agent has its own copy, updated between generate batches.")
    backend: Literal["hf", "vllm"] = option(
        "hf", "Rollout engine: hf (transformers, in this process) or vllm (an in-process vLLM "
        "engine on the GPU; pip install -e '.[gpu]'; needs weight_sync: copy).")
    generation_batch: int = option(128, "Most concurrent requests in one generate call (hf).")
    num_threads: int = option(1, "torch.set_num_threads for training and generation.")
    save_every: int = option(10, "Checkpoint every N steps (and at the end); 0: only at the end.")
    keep_last: int = option(2, "Checkpoints to keep.")
    save_trajectories: bool = option(True, "Append every trained-on episode to "
                                     "run_dir/trajectories.jsonl.")
    tensorboard: bool = option(True, "Also log to run_dir/tb when tensorboard is installed.")
    export_final: bool = option(True, "Write an ordinary model directory (LoRA merged) to "
                                "run_dir/final at the end.")
    imports: tuple[str, ...] = option((), "Modules imported when the config is read (modules that "
                                      "register third-party envs or advantage estimators).")
    model: ModelConfig = option(help="The policy model.", factory=ModelConfig)
    optim: OptimConfig = option(help="Optimiser and LR schedule.", factory=OptimConfig)
    rollout: RolloutConfig = option(
        help="How episodes are produced (env_id, group_size, concurrency, staleness).",
        factory=lambda: RolloutConfig(env_id="", group_size=8, concurrency=128))
    sampling: SamplingParams = option(
        help="Sampling of the policy during rollouts.",
        factory=lambda: SamplingParams(temperature=1.0, max_new_tokens=256))
    vllm: VLLMConfig = option(help="The vLLM engine (backend: vllm): memory share, dtype, ...",
                              factory=VLLMConfig)

    def __post_init__(self) -> None:
        for module in self.imports:  # first: they may register what the checks below look up
            importlib.import_module(module)
        for name in ("total_steps", "groups_per_step", "micro_batch_size", "num_mini_batches",
                     "update_epochs", "generation_batch", "num_threads", "keep_last"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1; got {getattr(self, name)}.")
        if self.loss_max_tokens is not None and self.loss_max_tokens < 1:
            raise ConfigError(f"loss_max_tokens must be >= 1 or null; got {self.loss_max_tokens}.")
        if not 0 <= self.overlong_buffer <= self.sampling.max_new_tokens:
            raise ConfigError(f"Need 0 <= overlong_buffer <= sampling.max_new_tokens "
                              f"({self.sampling.max_new_tokens}); got {self.overlong_buffer}.")
        if self.resample_rounds < 0 or (self.resample_rounds and not self.dynamic_sampling):
            raise ConfigError(f"resample_rounds ({self.resample_rounds}) must be >= 0 and goes "
                              "with dynamic_sampling: true.")
        if self.dynamic_sampling and self.rollout.group_size < 2:
            raise ConfigError("dynamic_sampling drops groups whose rewards are all equal; a "
                              "group of one always is: set rollout.group_size >= 2.")
        if self.overlong_penalty < 0:
            raise ConfigError(f"overlong_penalty must be >= 0; got {self.overlong_penalty}.")
        if self.save_every < 0:
            raise ConfigError(f"save_every must be >= 0; got {self.save_every}.")
        if not 0.0 <= self.clip_low < 1.0 or self.clip_high < 0.0:
            raise ConfigError(f"Need 0 <= clip_low < 1 and clip_high >= 0; got "
                              f"{self.clip_low}, {self.clip_high}.")
        if self.dual_clip is not None and self.dual_clip <= 1.0:
            raise ConfigError(f"dual_clip must be > 1 (typically 3) or null; got {self.dual_clip}.")
        if self.tis_cap is not None and self.tis_cap <= 0:
            raise ConfigError(f"tis_cap must be > 0 or null; got {self.tis_cap}.")
        if self.kl_coef < 0:
            raise ConfigError(f"kl_coef must be >= 0; got {self.kl_coef}.")
        if self.kl_coef > 0 and self.kl_in == "loss" and self.kl_estimator == "k1":
            raise ConfigError("kl_estimator: k1 in the loss has zero expected gradient (it does "
                              "nothing): use kl_estimator: k2 or k3 in the loss, or kl_in: reward "
                              "for k1.")
        if self.backend == "vllm" and self.weight_sync == "shared":
            raise ConfigError("backend: vllm keeps its own copy of the weights; set "
                              "weight_sync: copy.")

    @property
    def update(self) -> UpdateConfig:
        """The section one policy update reads (:class:`~toolgym.trainers.update.UpdateConfig`)."""
        derived: dict[str, Any] = {
            "temperature": self.sampling.temperature, "top_p": self.sampling.top_p,
            "max_grad_norm": self.optim.max_grad_norm,
            "norm_tokens": self.loss_max_tokens or self.sampling.max_new_tokens}
        same = {f.name: getattr(self, f.name) for f in dataclasses.fields(UpdateConfig)
                if f.name not in derived}
        return UpdateConfig(**derived, **same)

    @property
    def total_optimizer_steps(self) -> int:
        """Optimiser steps of the whole run: what the LR schedule spans."""
        return self.total_steps * self.update_epochs * self.num_mini_batches


def build_agent(policy: Policy, config: TrainerConfig) -> TrainableAgent:
    """The in-process agent of ``config.backend``: an HFAgent on the policy (shared or
    copied), or a VLLMAgent started from ``model.path`` (weights pushed after each update)."""
    if config.backend == "vllm":
        from toolgym.agents.vllm import VLLMAgent

        return VLLMAgent(config.model.path, sampling=config.sampling, seed=config.seed,
                         config=config.vllm, chat=policy.chat)
    from toolgym.agents.hf import HFAgent

    model = policy.model if config.weight_sync == "shared" else policy.inference_copy()
    return HFAgent(model, policy.chat, sampling=config.sampling, seed=config.seed,
                   max_batch=config.generation_batch)


def default_weight_sync(agent: Agent | None, mode: str) -> WeightSync:
    """Push new weights to a :class:`TrainableAgent` (no-op for any other agent)."""
    async def sync(policy: Policy, version: int) -> None:
        if not isinstance(agent, TrainableAgent):
            return
        state = None if mode == "shared" else await asyncio.to_thread(policy.export_state_dict)
        await agent.aupdate_weights(state, version=version)
    return sync


class Trainer:
    """Shared RL loop (see the module docstring); subclasses choose the advantages.

    Args:
        config: The run's config.
        policy: A loaded policy; default: :func:`load_policy` on ``config.model``.
        source: Where batches of groups come from; default: a
            :class:`RolloutManager` on ``config.rollout`` with an in-process agent.
        agent: The agent the default source samples from; default: an HFAgent.
        weight_sync: ``async (policy, version) -> None`` run after each update;
            default: ``agent.aupdate_weights`` (shared or copied weights).
        echo: Where the config header and step lines go (``print``; None: silent).
    """

    config_class: ClassVar[type[TrainerConfig]] = TrainerConfig
    kl_in_reward_supported: ClassVar[bool] = True
    """Whether :meth:`make_batch` applies ``kl_in: reward`` (trainers that override it: no)."""

    def __init__(self, config: TrainerConfig, *, policy: Policy | None = None,
                 source: RolloutSource | None = None, agent: Agent | None = None,
                 weight_sync: WeightSync | None = None,
                 echo: Callable[[str], None] | None = print) -> None:
        self.config = config
        torch.set_num_threads(config.num_threads)
        seed_everything(config.seed)
        self.policy = policy or load_policy(config.model, reference=config.kl_coef > 0)
        if config.disable_dropout:
            disable_dropout(self.policy.model)
        if source is None and not config.rollout.env_id:
            raise ConfigError("rollout.env_id is required: the env to train on, e.g. "
                              "--set rollout.env_id=toolgym/Code-v0 (`toolgym envs list`).")
        if config.kl_coef > 0 and config.kl_in == "reward" and not self.kl_in_reward_supported:
            raise ConfigError(f"{type(self).__name__} computes its own token or turn rewards and "
                              "does not support kl_in: reward; use kl_in: loss (k2 or k3).")
        owns = agent is None and source is None
        self._owned_agent = build_agent(self.policy, config) if owns else None
        self.agent: Agent | None = self._owned_agent if self._owned_agent is not None else agent
        if source is None:
            assert self.agent is not None  # built above: neither was given
            source = RolloutManager(config.rollout, self.agent, chat=self.policy.chat)
        self.source: RolloutSource = source
        self.weight_sync = weight_sync or default_weight_sync(self.agent, config.weight_sync)
        self.optimizer = build_optimizer(self.policy.trainable_parameters(), config.optim)
        self.scheduler = build_scheduler(self.optimizer, config.optim, config.total_optimizer_steps)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.run = RunDir(config.run_dir, logs=(MetricsLogger.FILE, TRAJECTORIES_FILE),
                          keep_last=config.keep_last)
        self.step = 0
        self.version = 0
        self.history: list[dict[str, float]] = []
        self.logger: MetricsLogger | None = None
        self._echo = echo
        self._gen_mark = (0, 0.0)

    # ------------------------------------------------------------ hooks
    def advantage_fn(self) -> AdvantageFn:
        """``fn(rewards[B], group_ids[B]) -> advantages[B]``; each algorithm supplies one."""
        raise NotImplementedError

    def value_term(self) -> ValueTerm | None:
        """A critic trained in the policy's own forward pass (PPO's value head); None here."""
        return None

    async def prepare(self, trajectories: list[Trajectory]) -> dict[str, float]:
        """Rollout-side work a trainer needs before :meth:`make_batch`; metrics to log.

        Runs on the event loop, where the rollout source lives (VinePPO samples
        its continuations here); nothing by default.
        """
        return {}

    def make_batch(self, trajectories: list[Trajectory]) -> tuple[Batch, dict[str, float]]:
        """Trajectories to a padded batch with advantages, and metrics to log.

        Runs in a worker thread, so a trainer that does real work here (a
        critic update) does not stall the rollouts.
        """
        batch, stats = build_batch(trajectories, pad_id=self.policy.pad_id,
                                   advantage_fn=self.advantage_fn(),
                                   max_length=self.config.max_length)
        metrics = {f"batch_{k}": float(v) for k, v in stats.as_dict().items()}
        if self.config.kl_coef > 0 and self.config.kl_in == "reward" and len(batch):
            with self._generation_lock():  # a LoRA reference switches the shared adapter off
                batch = precompute_logprobs(self.policy, batch, self.config.update, reference=True)
            batch, metrics["kl_reward"] = kl_in_reward(batch, self.advantage_fn(),
                                                       self.config.update)
        return batch, metrics

    def training_batch(self, trajectories: list[Trajectory]) -> tuple[Batch, dict[str, float]]:
        """:meth:`make_batch` with DAPO's overlong handling around it: what a step trains on.

        The soft punishment shapes the rewards the advantages see (on copies:
        the recorded episodes keep the env's reward); the filter then clears the
        loss mask of episodes with a turn cut by the budget (:mod:`~toolgym.trainers.overlong`).
        """
        cfg = self.config
        shaping: dict[str, float] = {}
        if cfg.overlong_buffer:
            trajectories, shaping["overlong_penalty_mean"] = punish_overlong(
                trajectories, budget=cfg.sampling.max_new_tokens, buffer=cfg.overlong_buffer,
                factor=cfg.overlong_penalty)
        batch, metrics = self.make_batch(trajectories)
        if cfg.overlong_filter:
            batch, filtered = filter_overlong(batch, trainable_only(trajectories)[0])
            metrics["batch_overlong_filtered"] = float(filtered)
        return batch, {**metrics, **shaping}

    # ------------------------------------------------------------- loop
    def train(self, *, resume: bool = False) -> list[dict[str, float]]:
        """Blocking twin of :meth:`atrain` (runs on toolgym's bridge loop)."""
        return run_sync(self.atrain(resume=resume))

    async def atrain(self, *, resume: bool = False) -> list[dict[str, float]]:
        """Train until ``total_steps``; with ``resume`` continue from the latest checkpoint.

        Returns:
            The metrics of the steps run in this call.
        """
        await self._open_run(resume)
        try:
            await self.source.start()
            while self.step < self.config.total_steps:
                await self.train_step()
                every = self.config.save_every
                if (every and self.step % every == 0) or self.step == self.config.total_steps:
                    await self.asave()
        finally:
            await self._close()
        if self.config.export_final:
            await asyncio.to_thread(self.policy.merge_and_save, self.run.path / "final")
        return self.history

    async def train_step(self) -> dict[str, float]:
        """One step: get a batch, update the policy, push the weights, log."""
        start = time.perf_counter()
        n, sampling = self.config.groups_per_step, dict[str, float]()
        if self.config.dynamic_sampling:
            groups, drawn, sampling = await draw_mixed_groups(
                self.source, n, resample_rounds=self.config.resample_rounds)
        else:
            groups = drawn = await self.source.get_batch(n)
        waited = time.perf_counter() - start
        trajectories = [t for group in groups for t in group]
        prepared = await self.prepare(trajectories)
        batch, batch_metrics = await asyncio.to_thread(self.training_batch, trajectories)
        t0 = time.perf_counter()
        update = await asyncio.to_thread(self._locked_update, batch, self.version + 1)
        update_s = time.perf_counter() - t0
        self.step += 1
        self.version += 1
        await self.weight_sync(self.policy, self.version)
        self.source.set_policy_version(self.version)
        metrics = {**rollout_metrics([t for g in drawn for t in g], self.version - 1), **update,
                   **prepared, **batch_metrics, **sampling,
                   "train_tokens_per_s": float(batch.attention_mask.sum()) / max(update_s, 1e-9),
                   "wait_s": waited, "update_s": update_s,
                   "step_s": time.perf_counter() - start, **self._generation_metrics(),
                   **{f"rollout_{k}": float(v) for k, v in self._source_counters().items()}}
        self._record(trajectories, metrics)
        return metrics

    def _locked_update(self, batch: Batch, new_version: int) -> dict[str, float]:
        """Update under the generation lock; in shared mode also stamp the new version there.

        The version must change in the same critical section as the weights: a
        generate batch that slipped in between the two would carry new-weight
        samples under the old version, and count as stale when it is not.
        """
        with self._generation_lock() as shared:
            self.policy.model.train()
            try:
                return policy_update(self.policy, self.optimizer, self.scheduler, batch,
                                     self.config.update, self.generator, value=self.value_term())
            finally:
                self.policy.model.eval()
                if shared is not None:
                    shared.policy_version = new_version

    @contextlib.contextmanager
    def _generation_lock(self) -> Iterator[SharedModelAgent | None]:
        """Hold the agent's lock while the shared module trains (see the module docstring).

        Yields the agent whose lock is held (a :class:`SharedModelAgent`, with
        ``weight_sync: shared``), or None: other agents (a copy of the weights,
        a remote server) and sources without an agent need none.
        """
        agent = self.agent
        if self.config.weight_sync != "shared" or not isinstance(agent, SharedModelAgent):
            yield None
            return
        with agent.lock:
            yield agent

    def _source_counters(self) -> dict[str, float]:
        """The rollout side's running totals (episodes, stale_dropped, infra_dropped, ...)."""
        return dict(self.source.stats)

    def _generation_metrics(self) -> dict[str, float]:
        if not isinstance(self.agent, TrainableAgent):
            return {}
        stats = self.agent.stats
        tokens, seconds = stats.tokens - self._gen_mark[0], stats.seconds - self._gen_mark[1]
        self._gen_mark = (stats.tokens, stats.seconds)
        return {"gen_tokens_per_s": tokens / seconds if seconds > 0 else float("nan")}

    def _record(self, trajectories: list[Trajectory], metrics: dict[str, float]) -> None:
        self.history.append(metrics)
        assert self.logger is not None
        self.logger.log(self.step, metrics)
        if self.config.save_trajectories and trajectories:
            for t in trajectories:
                t.info["train_step"] = self.step
            write_jsonl(self.run.path / TRAJECTORIES_FILE, trajectories)
        if self._echo is not None:
            m = metrics
            self._echo(f"step {self.step}/{self.config.total_steps}  "
                       f"reward {m['reward_mean']:.3f}  success {m['success_rate']:.2f}  "
                       f"loss {m.get('loss', float('nan')):+.4f}  "
                       f"entropy {m.get('entropy', float('nan')):.3f}  "
                       f"clip {m.get('clip_fraction', float('nan')):.3f}  {m['step_s']:.2f}s")

    # ------------------------------------------------------ persistence
    async def _open_run(self, resume: bool) -> None:
        checkpoint = self.run.start(self.config, resume=resume)
        if checkpoint is not None:
            await asyncio.to_thread(self._restore, checkpoint)
            await self.weight_sync(self.policy, self.version)
        self.run.announce(self._echo, type(self).__name__, self.config,
                          resumed_at=self.step if checkpoint else None)
        self.logger = MetricsLogger(self.run.path, tensorboard=self.config.tensorboard)

    def _restore(self, path: Path) -> None:
        state = load_checkpoint(path, policy=self.policy, optimizer=self.optimizer,
                                scheduler=self.scheduler)
        self.load_checkpoint_state(state)

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        """Undo :meth:`checkpoint_state` (the weights and optimiser are already loaded)."""
        self.step, self.version = int(state["step"]), int(state["version"])
        self.run.restore(state, self.generator)
        self.source.load_state_dict(state["source"])
        if state.get("sampler") and isinstance(self.agent, TrainableAgent):
            self.agent.load_sampler_state(state["sampler"])

    def checkpoint_state(self) -> dict[str, Any]:
        """Counters, RNG states, the rollout side's state (the sampler's seed counter too) and
        the log files' lengths."""
        return {
            "step": self.step, "version": self.version, **self.run.capture(self.generator),
            "source": dict(self.source.state_dict()),
            "sampler": (self.agent.sampler_state() if isinstance(self.agent, TrainableAgent)
                        else {}),
        }

    async def asave(self) -> Path:
        """Checkpoint the current step (state captured on the loop, files written in a thread)."""
        state = copy.deepcopy(self.checkpoint_state())
        return await asyncio.to_thread(
            self.run.save, self.step, policy=self.policy, optimizer=self.optimizer,
            scheduler=self.scheduler, state=state)

    async def _close(self) -> None:
        await self.source.aclose()
        if self._owned_agent is not None:
            await self._owned_agent.aclose()
        if self.logger is not None:
            self.logger.close()
