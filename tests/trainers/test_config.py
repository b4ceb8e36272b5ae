"""Config loading: YAML + --set, strict keys with did-you-mean, types, help text, checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolgym.errors import ConfigError
from toolgym.trainers.config import (
    apply_overrides,
    dump_yaml,
    field_help,
    format_config,
    from_dict,
    load_config,
)
from toolgym.trainers.grpo import GRPOConfig
from toolgym.trainers.sft import SFTConfig

YAML = """\
run_dir: runs/x
total_steps: 7
model: {path: /m, lora: true, lora_target_modules: [q_proj, v_proj]}
optim: {lr: 3e-4}
rollout: {env_id: toolgym/Code-v0, group_size: 4}
sampling: {temperature: 0.7}
"""


def write(tmp_path: Path, text: str = YAML) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


def test_yaml_and_overrides_fill_nested_sections_and_keep_defaults(tmp_path: Path) -> None:
    cfg = load_config(GRPOConfig, write(tmp_path), ["optim.warmup_steps=5", "kl_coef=0.1",
                                                    "rollout.max_staleness=0"])
    assert cfg.total_steps == 7 and cfg.optim.lr == 3e-4  # "3e-4" is a str to YAML
    assert cfg.optim.warmup_steps == 5 and cfg.optim.schedule == "cosine"
    assert cfg.model.lora and cfg.model.lora_target_modules == ("q_proj", "v_proj")
    assert cfg.rollout.group_size == 4 and cfg.rollout.max_staleness == 0
    assert cfg.rollout.concurrency == 128  # the section default of the trainer, not RolloutConfig's
    assert cfg.sampling.temperature == 0.7 and cfg.sampling.max_new_tokens == 256
    assert cfg.kl_coef == 0.1


def test_defaults_are_the_recipe_known_to_learn() -> None:
    cfg = GRPOConfig()
    assert (cfg.groups_per_step, cfg.rollout.group_size, cfg.sampling.temperature) == (16, 8, 1.0)
    assert (cfg.kl_coef, cfg.optim.lr, cfg.optim.schedule) == (0.0, 1e-3, "cosine")
    assert cfg.advantage_estimator == "grpo"


@pytest.mark.parametrize(("data", "overrides", "message"), [
    ({"totl_steps": 3}, [], "Did you mean 'total_steps'?"),
    ({"optim": {"learning_rate": 1}}, [], "Unknown config key 'optim.learning_rate'"),
    ({"rollout": {"grup_size": 2}}, [], "Did you mean 'rollout.group_size'?"),
    ({}, ["optim.lrr=1"], "Did you mean 'optim.lr'?"),
    ({}, ["modle.path=x"], "Did you mean 'model'?"),
    ({}, ["kl_coef"], "--set expects key=value"),
])
def test_unknown_keys_are_errors_that_suggest_the_fix(data, overrides, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("?", r"\?")):
        from_dict(GRPOConfig, apply_overrides(GRPOConfig, data, overrides))


@pytest.mark.parametrize(("data", "message"), [
    ({"total_steps": "many"}, "total_steps must be int"),
    ({"model": {"lora": "yes"}}, "model.lora must be bool"),
    ({"loss_agg": "mean"}, "loss_agg must be one of"),
    ({"optim": "fast"}, "section optim must be a mapping"),
    ({"total_steps": 0}, "total_steps must be >= 1"),
    ({"advantage_estimator": "rlooo"}, "Did you mean 'rloo'"),
    ({"advantage_estimator": "gae"}, "needs a critic"),
    ({"rollout": {"env_id": "e", "group_size": 1}}, "group_size must be >= 2"),
    ({"optim": {"lr": -1}}, "optim.lr must be > 0"),
])
def test_bad_values_are_errors_naming_the_key(data, message) -> None:
    with pytest.raises(ConfigError, match=message):
        from_dict(GRPOConfig, data)


def test_reinforce_pp_accepts_groups_of_one() -> None:
    cfg = from_dict(GRPOConfig, {"advantage_estimator": "reinforce_pp",
                                 "rollout": {"env_id": "e", "group_size": 1}})
    assert cfg.rollout.group_size == 1


def test_dump_yaml_round_trips(tmp_path: Path) -> None:
    cfg = load_config(GRPOConfig, write(tmp_path), ["dual_clip=3"])
    path = tmp_path / "dumped.yaml"
    dump_yaml(cfg, path)
    assert load_config(GRPOConfig, path) == cfg


def test_every_field_has_help_and_the_header_shows_it() -> None:
    for cls in (GRPOConfig, SFTConfig):
        missing = [name for name, text in field_help(cls).items() if not text]
        assert not missing, f"{cls.__name__} fields without help: {missing}"
    header = format_config(GRPOConfig())
    assert "groups_per_step: 16  # Prompts per step" in header
    # a foreign section's help comes from the docstrings under its fields
    assert "group_size: 8  # Episodes per task drawn together" in header
    assert "  lr: 0.001  # Peak learning rate" in header
