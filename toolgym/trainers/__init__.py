"""Trainers: RL on tool-using trajectories (token and turn level), SFT, and what they share.

Where things are, one concern per module::

    algorithms.py      the ``algorithm:`` registry: grpo, ppo, turn_level, archer, bilevel
    grpo.py ppo.py turn_level.py archer.py bilevel.py sft.py
                       <Algo>Config + <Algo>Trainer (archer: the turn-level trainer on
                       ArCHer's critic; turn_level also holds the turn-estimator registry)
    base.py            TrainerConfig + Trainer: collect, advantages, update, weight sync, log
    update.py          UpdateConfig + policy_update: mini/micro-batches, clipped surrogate, KL
    protocols.py       what a trainer needs of its rollout source and of a trainable agent
    run_dir.py         a run's directory: config.yaml, logs, checkpoints, resume
    advantages.py turn_advantages.py losses.py
                       pure tensor maths; the outcome-estimator registry
    critic.py          ArCHer's turn critic: network, TD maths, replay buffer, learner
    batching.py turn_batch.py logprobs.py   trajectories to tensors, log-probs
    policy.py optim.py checkpoint.py metrics.py config.py
                       the model (LoRA or full), AdamW + schedule, atomic checkpoints,
                       metrics log, frozen configs from YAML
    dynamic_sampling.py overlong.py   DAPO's batch filters
    doctor.py plot.py tiny_lm.py      run diagnosis, learning curves, a tiny local model

The names in ``__all__`` are imported from their modules on first use, so
``import toolgym.trainers.config`` (the CLI's ``--help``) stays light.

    >>> from toolgym.trainers import ArCHerTrainer, get_algorithm
    >>> get_algorithm("archer") is ArCHerTrainer
    True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toolgym.trainers.advantages import (
        get_advantage_estimator,
        register_advantage_estimator,
    )
    from toolgym.trainers.algorithms import algorithm_names, get_algorithm, register_algorithm
    from toolgym.trainers.archer import ArCHerConfig, ArCHerTrainer
    from toolgym.trainers.base import Trainer, TrainerConfig
    from toolgym.trainers.bilevel import BiLevelConfig, BiLevelTrainer
    from toolgym.trainers.critic import CriticConfig
    from toolgym.trainers.grpo import GRPOConfig, GRPOTrainer
    from toolgym.trainers.optim import OptimConfig
    from toolgym.trainers.policy import ModelConfig
    from toolgym.trainers.ppo import PPOConfig, PPOTrainer
    from toolgym.trainers.protocols import RolloutSource, TrainableAgent
    from toolgym.trainers.sft import SFTConfig, SFTTrainer
    from toolgym.trainers.turn_level import (
        TurnInputs,
        TurnLevelConfig,
        TurnLevelTrainer,
        register_turn_estimator,
    )
    from toolgym.trainers.update import UpdateConfig

_EXPORTS = {
    "ArCHerConfig": "archer",
    "ArCHerTrainer": "archer",
    "BiLevelConfig": "bilevel",
    "BiLevelTrainer": "bilevel",
    "CriticConfig": "critic",
    "GRPOConfig": "grpo",
    "GRPOTrainer": "grpo",
    "ModelConfig": "policy",
    "OptimConfig": "optim",
    "PPOConfig": "ppo",
    "PPOTrainer": "ppo",
    "RolloutSource": "protocols",
    "SFTConfig": "sft",
    "SFTTrainer": "sft",
    "TrainableAgent": "protocols",
    "Trainer": "base",
    "TrainerConfig": "base",
    "TurnInputs": "turn_level",
    "TurnLevelConfig": "turn_level",
    "TurnLevelTrainer": "turn_level",
    "UpdateConfig": "update",
    "algorithm_names": "algorithms",
    "get_advantage_estimator": "advantages",
    "get_algorithm": "algorithms",
    "register_advantage_estimator": "advantages",
    "register_algorithm": "algorithms",
    "register_turn_estimator": "turn_level",
}
"""Exported name -> the module of this package that defines it (the names of ``__all__``)."""

__all__ = [
    "ArCHerConfig",
    "ArCHerTrainer",
    "BiLevelConfig",
    "BiLevelTrainer",
    "CriticConfig",
    "GRPOConfig",
    "GRPOTrainer",
    "ModelConfig",
    "OptimConfig",
    "PPOConfig",
    "PPOTrainer",
    "RolloutSource",
    "SFTConfig",
    "SFTTrainer",
    "TrainableAgent",
    "Trainer",
    "TrainerConfig",
    "TurnInputs",
    "TurnLevelConfig",
    "TurnLevelTrainer",
    "UpdateConfig",
    "algorithm_names",
    "get_advantage_estimator",
    "get_algorithm",
    "register_advantage_estimator",
    "register_algorithm",
    "register_turn_estimator",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
