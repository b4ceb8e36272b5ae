"""Trainers by ``algorithm:`` name: the readable list of built-in registrations.

``toolgym train CONFIG.yaml`` reads ``algorithm:`` at the top of the file
(default ``grpo``), finds the trainer registered under that name, and reads
the rest of the file as that trainer's ``config_class``. Each built-in is one
``register_algorithm`` line with a ``"module:Class"`` entry point, imported on
first use, so naming one algorithm loads only its module.

Estimators are not algorithms: RLOO, Dr.GRPO and REINFORCE++ are ``algorithm:
grpo`` with another ``advantage_estimator``; GiGPO, per-turn returns,
turn-level GAE and VinePPO are ``algorithm: turn_level`` with another
``turn_estimator``; token-level GAE with a value head is ``ppo``; ``bilevel``
is PPO under a turn critic; ``archer`` is the turn-level trainer on ArCHer's
critic.

    >>> trainer = get_algorithm("archer")
    >>> trainer.__name__, trainer.config_class.__name__
    ('ArCHerTrainer', 'ArCHerConfig')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from toolgym.registry import Registry, load

if TYPE_CHECKING:
    from toolgym.trainers.base import Trainer

__all__ = ["algorithm_names", "get_algorithm", "register_algorithm"]

_registry: Registry[str | type[Trainer]] = Registry(
    "algorithm", note="(RLOO, Dr.GRPO and REINFORCE++ are algorithm: grpo with "
    "advantage_estimator: rloo / drgrpo / reinforce_pp; GiGPO, turn GAE and VinePPO are "
    "algorithm: turn_level with a turn_estimator.)")


def register_algorithm(name: str, trainer: str | type[Trainer]) -> None:
    """Make ``trainer`` selectable as ``algorithm: name``.

    Args:
        name: The config name.
        trainer: ``"module:Class"`` (imported on first use) or the class; its
            ``config_class`` is the config the rest of the file is read as.

    Raises:
        ConfigError: ``name`` is taken by another trainer.
    """
    _registry.add(name, trainer)


register_algorithm("grpo", "toolgym.trainers.grpo:GRPOTrainer")
register_algorithm("ppo", "toolgym.trainers.ppo:PPOTrainer")
register_algorithm("turn_level", "toolgym.trainers.turn_level:TurnLevelTrainer")
register_algorithm("archer", "toolgym.trainers.archer:ArCHerTrainer")
register_algorithm("bilevel", "toolgym.trainers.bilevel:BiLevelTrainer")


def algorithm_names() -> list[str]:
    """Every registered ``algorithm:`` name, in registration order."""
    return list(_registry)


def get_algorithm(name: str) -> type[Trainer]:
    """The trainer class registered as ``name`` (its module imported if need be).

    Raises:
        ConfigError: no algorithm has that name (with a did-you-mean, and where
            the estimator variants live).
    """
    trainer: type[Trainer] = load(_registry.lookup(name))
    return trainer
