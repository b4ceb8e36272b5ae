"""Fixtures of the trainer tests: a tiny local model, configs, replayable batches."""

from __future__ import annotations

import copy
import dataclasses
import random
from pathlib import Path
from typing import Any, TypeVar

import pytest
import torch

from tests.helpers.tiny_model import build_tiny_model
from tests.trainers.toy_env import ENV_ID, MODULE
from toolgym.rollout.trajectory import Trajectory, Turn
from toolgym.trainers.checkpoint import latest_checkpoint
from toolgym.trainers.config import from_dict
from toolgym.trainers.grpo import GRPOConfig
from toolgym.trainers.logprobs import token_logprobs
from toolgym.trainers.policy import ModelConfig, load_policy

C = TypeVar("C")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 64-wide, 2-layer Llama with a character tokenizer."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), chat_template="chatml")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def grpo_config(run_dir: Path, model_dir: Path, **overrides: Any) -> GRPOConfig:
    """A small GRPO config on the toy Digits env; ``overrides`` is a nested dict of fields."""
    return train_config(GRPOConfig, run_dir, model_dir, **overrides)


def train_config(cls: type[C], run_dir: Path, model_dir: Path, **overrides: Any) -> C:
    """A small config of trainer config class ``cls`` on the toy Digits env (see grpo_config)."""
    data: dict[str, Any] = {
        "run_dir": str(run_dir), "total_steps": 2, "groups_per_step": 4, "save_every": 0,
        "tensorboard": False, "imports": [MODULE], "micro_batch_size": 16,
        "model": {"path": str(model_dir)}, "optim": {"lr": 1e-2},
        "rollout": {"env_id": ENV_ID, "group_size": 4, "concurrency": 32},
        "sampling": {"max_new_tokens": 4},
    }
    for key, value in overrides.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    return from_dict(cls, data)


def synthetic_groups(model_dir: Path, n_groups: int, group_size: int, *,
                     seed: int) -> list[list[Trajectory]]:
    """Groups of two-turn trajectories with random ids and the base model's own logprobs."""
    rng = random.Random(seed)
    policy = load_policy(ModelConfig(path=str(model_dir)))
    vocab = policy.chat.tokenizer.convert_tokens_to_ids(list("abcdefghij0123456789"))
    groups = []
    for g in range(n_groups):
        group = []
        for _ in range(group_size):
            pick = lambda n: [rng.choice(vocab) for _ in range(n)]  # noqa: E731
            turns = [Turn("a", pick(rng.randint(2, 5)), None, prompt_ids=pick(4), obs_ids=pick(3)),
                     Turn("b", pick(rng.randint(1, 4)), None)]
            traj = Trajectory("toy", f"t{g}", turns, final_reward=float(rng.random() < 0.5),
                              group_id=f"g{g}", outcome="success", policy_version=0)
            _fill_logprobs(policy, traj)
            group.append(traj)
        groups.append(group)
    return groups


@torch.no_grad()
def _fill_logprobs(policy: Any, traj: Trajectory) -> None:
    sample = traj.samples()[0]
    ids = torch.tensor([sample.input_ids])
    logp = token_logprobs(policy.model, ids, torch.ones_like(ids))[0][0].tolist()
    pos = 0
    for turn in traj.turns:
        pos += len(turn.prompt_ids)
        turn.action_logprobs = logp[pos : pos + len(turn.action_ids or [])]
        pos += len(turn.action_ids or []) + len(turn.obs_ids)


class ReplaySource:
    """Replays recorded batches of groups, deterministically (the rollout side of resume tests).

    ``fail_after`` raises on the call after that many batches: a crash between steps.
    """

    def __init__(self, batches: list[list[list[Trajectory]]], fail_after: int | None = None):
        self.batches, self.fail_after = batches, fail_after
        self.index = 0
        self.policy_version = 0
        self.stats: dict[str, float] = {}

    async def start(self) -> None:
        pass

    async def get_batch(self, num_groups: int) -> list[list[Trajectory]]:
        if self.fail_after is not None and self.index >= self.fail_after:
            raise RuntimeError("simulated crash")
        batch = self.batches[self.index % len(self.batches)]
        self.index += 1
        return copy.deepcopy(batch[:num_groups])

    def set_policy_version(self, version: int) -> None:
        self.policy_version = version

    def state_dict(self) -> dict[str, int]:
        return {"index": self.index, "policy_version": self.policy_version}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.index, self.policy_version = state["index"], state["policy_version"]

    async def aclose(self) -> None:
        pass


def crash_and_resume(trainer_class: type, config: Any, batches: list[list[list[Trajectory]]],
                     run_dir: Path) -> tuple[Any, Any, list[dict[str, float]]]:
    """Train ``config`` straight through, and again in ``run_dir`` with a crash and a resume.

    The second run crashes after its first checkpoint (``save_every`` steps)
    and is resumed by a new trainer. Returns ``(straight, resumed, history
    of the resumed call)`` for the caller to compare.
    """
    straight = trainer_class(config, source=ReplaySource(batches), echo=None)
    straight.train()
    config_b = dataclasses.replace(config, run_dir=str(run_dir))
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer_class(config_b, source=ReplaySource(batches, fail_after=config.save_every),
                      echo=None).train()
    assert latest_checkpoint(run_dir).name == f"step_{config.save_every:08d}"
    resumed = trainer_class(config_b, source=ReplaySource(batches), echo=None)
    return straight, resumed, resumed.train(resume=True)
