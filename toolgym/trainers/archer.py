"""ArCHer (Zhou et al. 2024): an off-policy turn critic above a token-level policy gradient.

ArCHer runs two RL algorithms at once. The high level is value-based and
off-policy at the level of turns: an utterance-level critic with two Q heads,
a V head and target copies, trained by TD from a replay buffer of turns
(:class:`~toolgym.trainers.critic.ArCHerCritic`, ``critic:`` section). The low
level is the token-level clipped policy gradient every trainer here shares,
with each turn's tokens given that turn's ``A(s, a) = min(Q1, Q2)(s, a) - V(s)``.

Here that is :class:`~toolgym.trainers.turn_level.TurnLevelTrainer` with
``turn_estimator: archer``; this module gives it ArCHer's name and defaults,
so ``algorithm: archer`` in a ``toolgym train`` config and
``from toolgym.trainers import ArCHerConfig, ArCHerTrainer`` both find it::

    algorithm: archer
    critic: {updates_per_step: 32, warmup_steps: 96, match_tokens: 48}

    >>> ArCHerConfig().turn_estimator
    'archer'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from toolgym.trainers.base import TrainerConfig
from toolgym.trainers.config import option
from toolgym.trainers.turn_level import TurnLevelConfig, TurnLevelTrainer

__all__ = ["ArCHerConfig", "ArCHerTrainer"]


@dataclass(frozen=True)
class ArCHerConfig(TurnLevelConfig):
    """:class:`TurnLevelConfig` with ArCHer's defaults (``algorithm: archer``)."""

    run_dir: str = option("runs/archer", "Where metrics, checkpoints, trajectories and the final "
                          "model go.")
    turn_estimator: str = option("archer", "Per-turn advantages: gigpo, turn_return, turn_gae, "
                                 "archer, vine or one added with register_turn_estimator.")


class ArCHerTrainer(TurnLevelTrainer):
    """ArCHer: the turn-level trainer on ArCHer's critic (see the module docstring).

    Example:
        >>> trainer = ArCHerTrainer(ArCHerConfig(model=..., rollout=...))  # doctest: +SKIP
        >>> trainer.train()                                               # doctest: +SKIP
    """

    config_class: ClassVar[type[TrainerConfig]] = ArCHerConfig
