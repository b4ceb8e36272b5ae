"""The ``algorithm:`` registry: every name finds its trainer, and its trainer its config."""

from __future__ import annotations

import pytest

from toolgym.errors import ConfigError
from toolgym.trainers import algorithms
from toolgym.trainers.algorithms import algorithm_names, get_algorithm, register_algorithm
from toolgym.trainers.archer import ArCHerConfig, ArCHerTrainer
from toolgym.trainers.base import TrainerConfig
from toolgym.trainers.turn_level import TurnLevelTrainer


def test_every_algorithm_name_finds_a_trainer_and_its_config() -> None:
    assert algorithm_names() == ["grpo", "ppo", "turn_level", "archer", "bilevel"]
    pairs = {name: (get_algorithm(name).__name__, get_algorithm(name).config_class.__name__)
             for name in algorithm_names()}
    assert pairs == {"grpo": ("GRPOTrainer", "GRPOConfig"), "ppo": ("PPOTrainer", "PPOConfig"),
                     "turn_level": ("TurnLevelTrainer", "TurnLevelConfig"),
                     "archer": ("ArCHerTrainer", "ArCHerConfig"),
                     "bilevel": ("BiLevelTrainer", "BiLevelConfig")}
    assert all(issubclass(get_algorithm(n).config_class, TrainerConfig) for n in pairs)


def test_archer_is_the_turn_level_trainer_with_archers_estimator() -> None:
    assert issubclass(ArCHerTrainer, TurnLevelTrainer)
    assert ArCHerConfig().turn_estimator == "archer"


def test_an_unknown_name_suggests_the_closest_and_where_estimators_live() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'ppo'.*advantage_estimator: rloo"):
        get_algorithm("ppo2")


def test_a_registered_trainer_is_selectable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(algorithms, "_registry", algorithms._registry.copy())
    register_algorithm("mine", ArCHerTrainer)
    register_algorithm("mine", ArCHerTrainer)  # the same again: harmless
    assert get_algorithm("mine") is ArCHerTrainer
    with pytest.raises(ConfigError, match="'grpo' is already registered"):
        register_algorithm("grpo", ArCHerTrainer)
