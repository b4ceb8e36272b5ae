"""GRPO and its outcome-level relatives (Dr.GRPO, RLOO, REINFORCE++) on one trainer.

What differs between these algorithms is only how one scalar reward per
episode becomes one advantage per episode; the loss (PPO's clipped surrogate
on the sampled tokens, optional KL to the reference and entropy bonus), the
batching and the loop are shared (:mod:`toolgym.trainers.base`). So the
estimator is a config string, looked up in
:data:`~toolgym.trainers.advantages.ADVANTAGE_ESTIMATORS` (more with
:func:`~toolgym.trainers.advantages.register_advantage_estimator`)::

    advantage_estimator: grpo          # (r - mean_g) / std_g      DeepSeekMath
    advantage_estimator: drgrpo        # r - mean_g  (with loss_agg: seq-mean-token-sum-norm)
    advantage_estimator: rloo          # r - mean of the others     Ahmadian et al. 2024
    advantage_estimator: reinforce_pp  # batch-whitened rewards     Hu 2025

The defaults are the recipe known to learn on this project's CPU machine
(DESIGN.md): 16 prompts x group 8, temperature 1, no KL, AdamW with a
cosine-decayed LR from 1e-3.

    >>> GRPOConfig(rollout=RolloutConfig(env_id="toolgym/Code-v0", group_size=1))
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    toolgym.errors.ConfigError: advantage_estimator 'grpo' compares episodes within a group, ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from toolgym.errors import ConfigError
from toolgym.rollout.manager import RolloutConfig
from toolgym.trainers.advantages import get_advantage_estimator, lookup_advantage_estimator
from toolgym.trainers.base import Trainer, TrainerConfig
from toolgym.trainers.batching import AdvantageFn
from toolgym.trainers.config import option

__all__ = ["GRPOConfig", "GRPOTrainer", "RolloutConfig"]


@dataclass(frozen=True)
class GRPOConfig(TrainerConfig):
    """:class:`TrainerConfig` plus the choice of outcome-level advantage estimator."""

    run_dir: str = option("runs/grpo", "Where metrics, checkpoints, trajectories and the final "
                          "model go.")
    advantage_estimator: str = option(
        "grpo", "Outcome-level estimator: grpo, drgrpo, rloo, reinforce_pp or one added with "
        "register_advantage_estimator.")

    def __post_init__(self) -> None:
        super().__post_init__()
        estimator = lookup_advantage_estimator(self.advantage_estimator)  # unknown: ConfigError
        if estimator.needs_critic:
            raise ConfigError(f"advantage_estimator {self.advantage_estimator!r} needs a critic: "
                              "GRPOTrainer has none. "
                              "For token-level GAE with a value head set algorithm: ppo; "
                              "otherwise use an outcome-level estimator (grpo, drgrpo, rloo, "
                              "reinforce_pp).")
        if estimator.grouped and self.rollout.group_size < 2:
            raise ConfigError(
                f"advantage_estimator {self.advantage_estimator!r} compares episodes within a "
                f"group, so rollout.group_size must be >= 2 (got {self.rollout.group_size}); "
                "use reinforce_pp for groups of one.")


class GRPOTrainer(Trainer):
    """Token-level GRPO / Dr.GRPO / RLOO / REINFORCE++ over a :class:`RolloutManager`.

    Example:
        >>> trainer = GRPOTrainer(GRPOConfig(model=..., rollout=...))  # doctest: +SKIP
        >>> trainer.train()                                            # doctest: +SKIP
    """

    config_class: ClassVar[type[TrainerConfig]] = GRPOConfig
    config: GRPOConfig

    def advantage_fn(self) -> AdvantageFn:
        """The configured estimator, called as ``fn(rewards[B], group_ids[B])``."""
        fn: AdvantageFn = get_advantage_estimator(self.config.advantage_estimator)
        return fn
