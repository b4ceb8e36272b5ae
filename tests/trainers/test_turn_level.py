"""TurnLevelTrainer end to end: per-turn advantages in the batch, learning updates, exact resume."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from typer.testing import CliRunner

from tests.trainers.conftest import (
    ReplaySource,
    crash_and_resume,
    grpo_config,
    synthetic_groups,
)
from toolgym._sync import run_sync
from toolgym.cli.train import app
from toolgym.errors import ConfigError
from toolgym.rollout.trajectory import Trajectory, Turn, read_jsonl
from toolgym.trainers.archer import ArCHerConfig, ArCHerTrainer
from toolgym.trainers.config import from_dict, to_dict
from toolgym.trainers.metrics import read_metrics
from toolgym.trainers.turn_batch import turn_contexts
from toolgym.trainers.turn_level import (
    TURN_ESTIMATORS,
    TurnEstimator,
    TurnInputs,
    TurnLevelConfig,
    TurnLevelTrainer,
    lookup_turn_estimator,
    register_turn_estimator,
)


def turn_config(run_dir: Path, model_dir: Path, cls: type = TurnLevelConfig,
                **overrides: Any) -> Any:
    """The small GRPO test config as a turn-level config, with nested ``overrides``."""
    data = to_dict(grpo_config(run_dir, model_dir))
    del data["advantage_estimator"], data["run_dir"]
    data["run_dir"] = str(run_dir)
    for key, value in overrides.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    return from_dict(cls, data)


def test_gigpo_batch_gives_turns_different_advantages_and_observations_none(
        tiny_dir: Path, tmp_path: Path) -> None:
    groups = synthetic_groups(tiny_dir, 2, 4, seed=3)
    for group in groups:  # a process reward on the first turn makes turn returns differ
        for i, traj in enumerate(group):
            traj.turns[0].reward = float(i % 2)
            traj.turns[0].observation = "same"
    trainer = TurnLevelTrainer(turn_config(tmp_path / "run", tiny_dir, turn_estimator="gigpo",
                                           process_coef=0.5),
                               source=ReplaySource([groups]), echo=None)
    batch, metrics = trainer.make_batch([t for g in groups for t in g])
    assert metrics["batch_trajectories"] == 8 and metrics["turn_adv_abs_mean"] > 0
    assert not bool(batch.advantages[~batch.loss_mask].any())  # never on prompt/observations
    traj = groups[0][0]
    n0, obs = len(traj.turns[0].prompt_ids), len(traj.turns[0].obs_ids)
    a0 = len(traj.turns[0].action_ids or [])
    turn0 = batch.advantages[0, n0:n0 + a0]
    turn1 = batch.advantages[0, n0 + a0 + obs:][batch.loss_mask[0, n0 + a0 + obs:]]
    assert torch.unique(turn0).numel() == 1 and torch.unique(turn1).numel() == 1
    assert float(turn0[0]) != float(turn1[0])


def test_archer_trains_critic_and_policy_and_resumes_exactly(tiny_dir: Path,
                                                             tmp_path: Path) -> None:
    batches = [synthetic_groups(tiny_dir, 2, 4, seed=s) for s in range(4)]
    cfg = turn_config(tmp_path / "a", tiny_dir, cls=ArCHerConfig, total_steps=4, save_every=2,
                      export_final=False, rollout={"group_size": 1},
                      critic={"dim": 8, "hidden": 16, "batch_size": 8, "updates_per_step": 3,
                              "warmup_steps": 3})
    fresh = ArCHerTrainer(cfg, source=ReplaySource(batches), echo=None)  # the same init
    assert fresh.critic is not None
    straight, resumed, _ = crash_and_resume(ArCHerTrainer, cfg, batches, tmp_path / "b")
    history = read_metrics(tmp_path / "a")
    assert all("critic_q1_loss" in h and "loss" in h for h in history)
    assert history[-1]["critic_buffer"] == 4 * 8 * 2  # 4 steps x 8 episodes x 2 turns
    changed = lambda before, after: any(not torch.equal(v, after[k]) for k, v in before.items())  # noqa: E731
    assert changed(fresh.policy.trainable_state_dict(), straight.policy.trainable_state_dict())
    assert changed(fresh.critic.online.state_dict(), straight.critic.online.state_dict())
    assert resumed.critic is not None
    for name, value in straight.critic.online.state_dict().items():
        assert torch.equal(value, resumed.critic.online.state_dict()[name]), name
    for name, value in straight.policy.trainable_state_dict().items():
        assert torch.equal(value, resumed.policy.trainable_state_dict()[name]), name
    a, b = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert [r["critic_q1_loss"] for r in a] == [r["critic_q1_loss"] for r in b]


def test_turn_gae_runs_on_the_multi_turn_toy_env(tiny_dir: Path, tmp_path: Path) -> None:
    cfg = turn_config(tmp_path / "run", tiny_dir, turn_estimator="turn_gae", total_steps=1,
                      export_final=False, rollout={"env_kwargs": {"turns": 2}},
                      critic={"dim": 8, "hidden": 16, "updates_per_step": 2})
    history = TurnLevelTrainer(cfg, echo=None).train()
    # 4 groups x 4 episodes x 2 turns reached the replay buffer
    assert history[0]["critic_buffer"] == 4 * 4 * 2 and history[0]["turn_adv_abs_mean"] > 0


@pytest.mark.parametrize(("fields", "message"), [
    ({"turn_estimator": "gipgo"}, "Unknown turn estimator 'gipgo'. Did you mean 'gigpo'?"),
    ({"rollout": {"group_size": 1}}, "rollout.group_size must be >= 2"),
    ({"step_estimator": "gae"}, "step_estimator must be a group estimator"),
    ({"critic": {"tau": 0.0}}, "critic.tau must be in (0, 1]"),
])
def test_config_errors_say_what_to_change(tiny_dir: Path, tmp_path: Path, fields: dict[str, Any],
                                          message: str) -> None:
    with pytest.raises(ConfigError) as err:
        turn_config(tmp_path / "run", tiny_dir, **fields)
    assert message in str(err.value)


def test_cli_selects_archer_and_prints_the_critic_section(tiny_dir: Path, tmp_path: Path) -> None:
    data = to_dict(turn_config(tmp_path / "run", tiny_dir, cls=ArCHerConfig))
    path = tmp_path / "archer.yaml"
    path.write_text(yaml.safe_dump({"algorithm": "archer", **data}))
    result = CliRunner().invoke(app, ["train", str(path), "--set", "critic.tau=0.2", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "turn_estimator: archer" in result.output and "tau: 0.2" in result.output


def test_vine_continuation_starts_from_the_exact_token_prefix(tiny_dir: Path,
                                                              tmp_path: Path) -> None:
    cfg = turn_config(tmp_path / "run", tiny_dir, turn_estimator="vine",
                      rollout={"env_kwargs": {"turns": 3}})
    trainer = TurnLevelTrainer(cfg, echo=None)

    async def episode_and_continuation() -> tuple[Trajectory, Trajectory | None]:
        try:
            original = await trainer.source.episode("t1", seed=5, group_id="g")
            return original, await trainer.source.continuation(original, 2)
        finally:
            await trainer.source.aclose()
            await trainer.agent.aclose()

    original, cont = run_sync(episode_and_continuation())
    assert cont is not None and len(cont.turns) == 3
    # the contexts before turns 0, 1 and 2 are the same ids: replay rebuilt the token prefix
    assert turn_contexts(cont)[:3] == turn_contexts(original)[:3]
    assert [t.action_ids for t in cont.turns[:2]] == [t.action_ids for t in original.turns[:2]]
    assert trainer.source.stats["continuations"] == 1 and trainer.source.stats["episodes"] == 1


def test_vine_samples_continuations_per_boundary_and_trains_on_their_values(
        tiny_dir: Path, tmp_path: Path) -> None:
    cfg = turn_config(tmp_path / "run", tiny_dir, turn_estimator="vine", vine_samples=2,
                      total_steps=1, export_final=False, rollout={"env_kwargs": {"turns": 2}})
    history = TurnLevelTrainer(cfg, echo=None).train()
    m = history[0]
    kept = m["batch_trajectories"]
    # groups of 4: the first boundary's value comes from the group, the second from 2 samples
    assert m["vine_continuations"] == kept * 2 and m["vine_dropped"] == 0
    assert m["vine_env_steps"] == kept * 2 * 2  # each continuation replays one turn, samples one
    trajs = read_jsonl(tmp_path / "run" / "trajectories.jsonl")
    assert all([len(r) for r in t.info["vine_returns"]] == [0, 2] for t in trajs)
    assert m["turn_adv_abs_mean"] > 0 and m["loss"] == m["loss"]


def test_vine_needs_a_source_that_can_continue_episodes(tiny_dir: Path, tmp_path: Path) -> None:
    cfg = turn_config(tmp_path / "run", tiny_dir, turn_estimator="vine", total_steps=1)
    with pytest.raises(ConfigError, match="continuation"):
        TurnLevelTrainer(cfg, source=ReplaySource([]), echo=None)


class ContinuingSource(ReplaySource):
    """ReplaySource whose continuations are a fixed three-turn episode (0.5, 0.25, outcome 1)."""

    async def continuation(self, trajectory: Trajectory, turn: int) -> Trajectory:
        turns = [Turn("a", [1], reward=0.5), Turn("b", [2], reward=0.25), Turn("c", [3])]
        return Trajectory("toy", trajectory.task_id, turns, final_reward=1.0, outcome="success")


def test_vine_values_are_the_continuations_discounted_returns(tiny_dir: Path,
                                                               tmp_path: Path) -> None:
    groups = synthetic_groups(tiny_dir, 1, 2, seed=0)
    cfg = turn_config(tmp_path / "run", tiny_dir, turn_estimator="vine", vine_samples=2,
                      gamma=0.5, process_coef=0.4)
    trainer = TurnLevelTrainer(cfg, source=ContinuingSource([groups]), echo=None)
    trajs = [t for g in groups for t in g]
    metrics = run_sync(trainer.prepare(trajs))
    assert metrics["vine_continuations"] == 2 * 2 and metrics["vine_env_steps"] == 4 * 3
    # from boundary 1 of the continuation: 0.4 * 0.25 + 0.5 * 1.0 (the outcome replaces turn 2's)
    assert [len(t.info["vine_returns"][0]) for t in trajs] == [0, 0]  # the group stands in
    values = [v for t in trajs for v in t.info["vine_returns"][1]]
    assert values == pytest.approx([0.6] * 4)


# ---------------------------------------------------------------- registry
def test_every_turn_estimator_is_registered_with_what_it_needs() -> None:
    assert set(TURN_ESTIMATORS) == set(TurnEstimator)
    needs = {name: (e.grouped, e.needs_critic, e.continuations)
             for name, e in TURN_ESTIMATORS.items()}
    assert needs == {"gigpo": (True, False, False), "turn_return": (True, False, False),
                     "turn_gae": (False, True, False), "archer": (False, True, False),
                     "vine": (False, False, True)}


@pytest.fixture
def turn_registry() -> Iterator[None]:
    saved = dict(TURN_ESTIMATORS)
    yield
    TURN_ESTIMATORS.clear()
    TURN_ESTIMATORS.update(saved)


def test_a_registered_turn_estimator_is_what_the_trainer_trains_on(
        tiny_dir: Path, tmp_path: Path, turn_registry: None) -> None:
    def last_turn_only(x: TurnInputs) -> torch.Tensor:  # the outcome, on the last turn alone
        last = x.turns.mask.sum(1, keepdim=True) - 1
        return torch.zeros(x.turns.mask.shape).scatter(1, last, x.turns.rewards.gather(1, last))

    register_turn_estimator("last_turn_only", last_turn_only, grouped=False)
    with pytest.raises(ConfigError, match="'last_turn_only' is already registered"):
        register_turn_estimator("last_turn_only", lambda x: x.turns.rewards)
    assert lookup_turn_estimator("last_turn_only").fn is last_turn_only
    groups = synthetic_groups(tiny_dir, 1, 2, seed=5)  # two turns each, outcomes 1 and 0
    cfg = turn_config(tmp_path / "run", tiny_dir, turn_estimator="last_turn_only",
                      rollout={"group_size": 1})  # not grouped: groups of one are fine
    trainer = TurnLevelTrainer(cfg, source=ReplaySource([groups]), echo=None)
    assert trainer.critic is None
    batch, _ = trainer.make_batch([t for g in groups for t in g])
    for row, traj in enumerate(t for g in groups for t in g):
        turn0 = batch.advantages[row][batch.turn_index[row] == 0]
        turn1 = batch.advantages[row][batch.turn_index[row] == 1]
        assert bool((turn0 == 0).all()) and bool((turn1 == traj.final_reward).all())
