"""The hierarchical trainer: per-turn advantages on GRPO's token-level update.

Everything but the advantages is :class:`~toolgym.trainers.base.Trainer`'s:
the rollouts, the clipped token-level loss, micro-batching, weight sync,
checkpoints. What changes is that each *turn* gets its own advantage, spread
over exactly that turn's action tokens (:mod:`toolgym.trainers.turn_advantages`)::

    turn_estimator: gigpo        # episode GRPO + omega x step-group GRPO      no critic
    turn_estimator: turn_return  # return-to-go - leave-one-out per turn index  no critic
    turn_estimator: turn_gae     # GAE over turns against the critic's V(s)
    turn_estimator: archer       # Q(s, a) - V(s) of ArCHer's off-policy critic
    turn_estimator: vine         # VinePPO: TD(0) on Monte-Carlo values    no critic, K rollouts

Each is one entry of :data:`TURN_ESTIMATORS`, a registry of the same kind as
the outcome-level one (:class:`~toolgym.trainers.advantages.EstimatorRegistry`):
a function ``fn(TurnInputs) -> Tensor[B, K]`` and what the trainer must
provide for it (a group, the turn critic, continuations). A new one is one
:func:`register_turn_estimator` line, in a module a config's ``imports:``
names.

``vine`` samples ``vine_samples`` continuations from every turn boundary of
every episode before the update (:meth:`TurnLevelTrainer.prepare`): the
rollout manager replays the recorded turns to restore the env and the token
prefix (:mod:`toolgym.rollout.replay`), then the current policy carries on.
Those extra episodes cost env steps (``vine_env_steps`` in the metrics) and
are never trained on; the values they give are kept in each trajectory's
``info["vine_returns"]``.

``turn_gae`` and ``archer`` train an utterance-level critic
(:class:`~toolgym.trainers.critic.ArCHerCritic`) from a replay buffer before
each policy update; its state is part of every checkpoint, so a resumed run
continues exactly. ArCHer, this trainer with ``turn_estimator: archer``, is
:mod:`toolgym.trainers.archer` (``algorithm: archer``).

    >>> TurnLevelConfig(rollout=RolloutConfig(env_id="x", group_size=1))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    toolgym.errors.ConfigError: turn_estimator 'gigpo' compares episodes within a group, ...
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from toolgym.errors import ConfigError
from toolgym.rollout.manager import RolloutConfig
from toolgym.rollout.trajectory import Trajectory
from toolgym.trainers.advantages import (
    EstimatorRegistry,
    RegisteredEstimator,
    lookup_advantage_estimator,
)
from toolgym.trainers.base import Trainer, TrainerConfig
from toolgym.trainers.batching import Batch, build_batch, trainable_only
from toolgym.trainers.config import option, require_unit_interval
from toolgym.trainers.critic import ArCHerCritic, CriticConfig
from toolgym.trainers.protocols import ContinuingSource
from toolgym.trainers.turn_advantages import (
    discounted_returns,
    gigpo_advantages,
    turn_gae,
    turn_return_advantages,
    vine_advantages,
    vine_values,
)
from toolgym.trainers.turn_batch import TurnTensors, turn_tensors

__all__ = ["TURN_ESTIMATORS", "RolloutConfig", "TurnEstimator", "TurnInputs", "TurnLevelConfig",
           "TurnLevelTrainer", "lookup_turn_estimator", "register_turn_estimator"]


# ------------------------------------------------------------ the registry
class TurnEstimator(StrEnum):
    """Names of the built-in turn-level estimators, as they appear in configs."""

    GIGPO = "gigpo"
    TURN_RETURN = "turn_return"
    TURN_GAE = "turn_gae"
    ARCHER = "archer"
    VINE = "vine"


@dataclass(frozen=True)
class TurnInputs:
    """What a turn-level estimator reads; it returns ``Tensor[B, K]``, one advantage per turn.

    ``B`` kept trajectories, ``K`` turns (the longest one's); entries off
    ``turns.mask`` are ignored.
    """

    trajectories: Sequence[Trajectory]
    """The trajectories the batch trains on."""
    turns: TurnTensors
    """Their turn rewards (``process_coef`` applied), mask, terminated flags and state keys."""
    group_ids: Tensor
    """``LongTensor[B]``: trajectories sampled from one task share an id."""
    config: TurnLevelConfig
    """``gamma``, ``lam``, ``omega``, ... of the run."""
    critic: ArCHerCritic | None
    """The turn critic, trained on these turns already (estimators registered with
    ``needs_critic``); None otherwise."""


TurnEstimatorFn = Callable[[TurnInputs], Tensor]

TURN_ESTIMATORS = EstimatorRegistry("turn estimator")
"""The turn-level registry; add to it with :func:`register_turn_estimator`."""


def register_turn_estimator(name: str, fn: TurnEstimatorFn, *, grouped: bool = True,
                            needs_critic: bool = False, continuations: bool = False) -> None:
    """Make ``fn`` selectable as ``turn_estimator: name``.

    Args:
        name: The config string.
        fn: ``fn(TurnInputs) -> Tensor[B, K]``; pure but for what it reads
            from ``inputs.critic``.
        grouped: Whether ``fn`` compares the episodes of a group (then configs
            need ``rollout.group_size >= 2``).
        needs_critic: Whether ``fn`` reads ``inputs.critic``; the trainer then
            trains one (``critic:`` section) before each update.
        continuations: Whether ``fn`` reads ``info["vine_returns"]``, the
            returns of continuations the trainer samples from every turn
            boundary first (the rollout source must continue episodes).

    Raises:
        ConfigError: ``name`` is taken by another function.
    """
    TURN_ESTIMATORS.add(name, RegisteredEstimator(fn, grouped, needs_critic, continuations))


def lookup_turn_estimator(name: str) -> RegisteredEstimator:
    """The registry entry of ``name``.

    Raises:
        ConfigError: ``name`` is not registered; the message lists the valid names.
    """
    return TURN_ESTIMATORS.lookup(name)


def _turn_return(x: TurnInputs) -> Tensor:
    returns = discounted_returns(x.turns.rewards, x.turns.mask, gamma=x.config.gamma)
    return turn_return_advantages(returns, x.turns.mask, x.group_ids,
                                  scale=x.config.return_scale)


def _gigpo(x: TurnInputs) -> Tensor:
    cfg = x.config
    returns = discounted_returns(x.turns.rewards, x.turns.mask, gamma=cfg.gamma)
    return gigpo_advantages(returns, x.turns.mask, x.group_ids, x.turns.state_keys,
                            omega=cfg.omega, episode_estimator=cfg.episode_estimator,
                            step_estimator=cfg.step_estimator)


def _turn_gae(x: TurnInputs) -> Tensor:
    assert x.critic is not None
    values, after = x.critic.turn_values(x.trajectories, x.turns.mask,
                                         process_coef=x.config.process_coef)
    adv, _ = turn_gae(x.turns.rewards, values, x.turns.mask, gamma=x.config.gamma,
                      lam=x.config.lam, terminated=x.turns.terminated, bootstrap_values=after)
    return adv


def _archer(x: TurnInputs) -> Tensor:
    critic, coef = x.critic, x.config.process_coef
    assert critic is not None
    grid = torch.zeros(x.turns.mask.shape)
    grid[x.turns.mask] = critic.advantages(
        [tr for t in x.trajectories for tr in critic.transitions(t, process_coef=coef)])
    return grid


def _vine(x: TurnInputs) -> Tensor:
    """VinePPO's TD(0) advantages on the values :meth:`TurnLevelTrainer.prepare` sampled."""
    turns = x.turns
    per_turn = [t.info.get("vine_returns", []) for t in x.trajectories]
    width = max((len(r) for rows in per_turn for r in rows), default=0)
    samples = torch.zeros((*turns.mask.shape, max(width, 1)))
    valid = torch.zeros(samples.shape, dtype=torch.bool)
    for b, rows in enumerate(per_turn):
        for k, r in enumerate(rows):
            samples[b, k, :len(r)] = torch.tensor(r, dtype=samples.dtype)
            valid[b, k, :len(r)] = True
    gamma = x.config.gamma
    returns = discounted_returns(turns.rewards, turns.mask, gamma=gamma)
    values = vine_values(samples, valid, returns, turns.mask, x.group_ids)
    # After the last turn there is nothing to continue (a truncated episode used up
    # its budget), so every row ends at 0, as discounted_returns assumes.
    ended = torch.ones_like(turns.terminated)
    return vine_advantages(turns.rewards, values, turns.mask, gamma=gamma, terminated=ended)


register_turn_estimator(TurnEstimator.GIGPO, _gigpo)
register_turn_estimator(TurnEstimator.TURN_RETURN, _turn_return)
register_turn_estimator(TurnEstimator.TURN_GAE, _turn_gae, grouped=False, needs_critic=True)
register_turn_estimator(TurnEstimator.ARCHER, _archer, grouped=False, needs_critic=True)
register_turn_estimator(TurnEstimator.VINE, _vine, grouped=False, continuations=True)


# ------------------------------------------------------------ the trainer
@dataclass(frozen=True)
class TurnLevelConfig(TrainerConfig):
    """:class:`TrainerConfig` plus the turn-level estimator and, where used, its critic."""

    run_dir: str = option("runs/turn_level", "Where metrics, checkpoints, trajectories and the "
                          "final model go.")
    turn_estimator: str = option("gigpo", "Per-turn advantages: gigpo, turn_return, turn_gae, "
                                 "archer, vine or one added with register_turn_estimator.")
    gamma: float = option(1.0, "Discount per turn (not per token).")
    lam: float = option(0.95, "GAE lambda over turns (turn_gae).")
    process_coef: float = option(1.0, "Weight of the per-turn (process) rewards of all turns but "
                                 "the last; the last turn's reward is the outcome.")
    omega: float = option(1.0, "gigpo: weight of the step-level advantage.")
    episode_estimator: str = option("grpo", "gigpo: outcome estimator for the episode level "
                                    "(grpo, drgrpo, rloo).")
    step_estimator: str = option("grpo", "gigpo: estimator within step groups (grpo, drgrpo, "
                                 "rloo).")
    return_scale: Literal["none", "group"] = option(
        "none", "turn_return: 'none' (unbiased) or 'group' (divide by the group's return std).")
    vine_samples: int = option(4, "vine: continuations sampled from each turn boundary "
                               "(VinePPO's K); the first turn's value comes from the group.")
    critic: CriticConfig = option(help="The turn critic (turn_gae, archer).",
                                  factory=CriticConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        estimator = lookup_turn_estimator(self.turn_estimator)  # unknown: ConfigError
        for name in ("episode_estimator", "step_estimator"):
            value = getattr(self, name)
            if not lookup_advantage_estimator(value).grouped:  # unknown name: ConfigError
                raise ConfigError(f"{name} must be a group estimator (grpo, drgrpo, rloo); "
                                  f"got {value!r}.")
        require_unit_interval(self, "gamma", "lam")
        if self.vine_samples < 1:
            raise ConfigError(f"vine_samples must be >= 1; got {self.vine_samples}.")
        if estimator.grouped and self.rollout.group_size < 2:
            raise ConfigError(
                f"turn_estimator {self.turn_estimator!r} compares episodes within a group, so "
                f"rollout.group_size must be >= 2 (got {self.rollout.group_size}); use "
                "turn_gae or archer (a learned critic) or vine (Monte-Carlo values) for groups "
                "of one.")


class TurnLevelTrainer(Trainer):
    """Token-level policy update with per-turn advantages (see the module docstring).

    Example:
        >>> trainer = TurnLevelTrainer(TurnLevelConfig(model=..., rollout=...))  # doctest: +SKIP
        >>> trainer.train()                                                     # doctest: +SKIP
    """

    config_class: ClassVar[type[TrainerConfig]] = TurnLevelConfig
    kl_in_reward_supported: ClassVar[bool] = False
    config: TurnLevelConfig

    def __init__(self, config: TurnLevelConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.estimator = lookup_turn_estimator(config.turn_estimator)
        if self.estimator.continuations and not isinstance(self.source, ContinuingSource):
            raise ConfigError(f"turn_estimator: {config.turn_estimator} continues episodes "
                              "through the rollout source's continuation(trajectory, turn), "
                              f"which RolloutManager has and {type(self.source).__name__} "
                              "has not.")
        self.critic: ArCHerCritic | None = None
        if self.estimator.needs_critic:
            vocab = self.policy.model.get_input_embeddings().num_embeddings
            self.critic = ArCHerCritic(config.critic, vocab_size=vocab, gamma=config.gamma,
                                       seed=config.seed)

    def make_batch(self, trajectories: list[Trajectory]) -> tuple[Batch, dict[str, float]]:
        """Train the critic on the new turns (if there is one), then build the batch."""
        metrics: dict[str, float] = {}
        if self.critic is not None:
            kept, _ = trainable_only(trajectories)
            self.critic.observe(kept, process_coef=self.config.process_coef)
            metrics = self.critic.update()
        batch, stats = build_batch(trajectories, pad_id=self.policy.pad_id,
                                   turn_advantage_fn=self.turn_advantages,
                                   max_length=self.config.max_length)
        metrics.update({f"batch_{k}": float(v) for k, v in stats.as_dict().items()})
        if batch.num_action_tokens:
            metrics["turn_adv_abs_mean"] = float(batch.advantages[batch.loss_mask].abs().mean())
        return batch, metrics

    def turn_advantages(self, trajectories: Sequence[Trajectory], group_ids: Tensor) -> Tensor:
        """``Tensor[B, K]``: the configured estimator on the kept trajectories."""
        turns = turn_tensors(trajectories, process_coef=self.config.process_coef)
        return self.estimator.fn(TurnInputs(trajectories, turns, group_ids, self.config,
                                            self.critic))

    async def prepare(self, trajectories: list[Trajectory]) -> dict[str, float]:
        """Continuations (``vine``): ``vine_samples`` from each turn boundary, concurrently.

        Their returns go into each trajectory's ``info["vine_returns"][k]``.
        A group of two or more needs none from the first boundary (see
        :func:`~toolgym.trainers.turn_advantages.vine_values`).
        """
        if not self.estimator.continuations:
            return {}
        assert isinstance(self.source, ContinuingSource)  # checked in __init__
        continuation = self.source.continuation
        kept, _ = trainable_only(trajectories)
        sizes = Counter(t.group_id for t in kept)

        def first_boundary(t: Trajectory) -> int:  # a group stands in for s_0
            return 1 if t.group_id is not None and sizes[t.group_id] > 1 else 0

        jobs = [(t, k) for t in kept for k in range(first_boundary(t), len(t.turns))
                for _ in range(self.config.vine_samples)]
        start = time.perf_counter()
        results = await asyncio.gather(*(continuation(t, k) for t, k in jobs))
        for t in kept:
            t.info["vine_returns"] = [[] for _ in t.turns]
        ran = [(t, k, c) for (t, k), c in zip(jobs, results, strict=True) if c is not None]
        if ran:
            turns = turn_tensors([c for *_, c in ran], process_coef=self.config.process_coef)
            returns = discounted_returns(turns.rewards, turns.mask, gamma=self.config.gamma)
            for i, (t, k, _) in enumerate(ran):
                t.info["vine_returns"][k].append(float(returns[i, k]))
        return {"vine_continuations": float(len(ran)), "vine_dropped": float(len(jobs) - len(ran)),
                "vine_env_steps": float(sum(len(c.turns) for *_, c in ran)),
                "vine_s": time.perf_counter() - start}

    # ------------------------------------------------------ persistence
    def checkpoint_state(self) -> dict[str, Any]:
        """The base state plus the critic (networks, optimiser, replay buffer)."""
        state = super().checkpoint_state()
        if self.critic is not None:
            state["critic"] = self.critic.state_dict()
        return state

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        super().load_checkpoint_state(state)
        if self.critic is not None:
            self.critic.load_state_dict(state["critic"])
