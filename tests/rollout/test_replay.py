"""Replay of recorded actions restores the env at a turn boundary, or says it cannot."""

from __future__ import annotations

import pytest

from tests.trainers.toy_env import DigitsEnv
from toolgym._sync import run_sync
from toolgym.errors import ReplayDiverged
from toolgym.rollout.replay import replay_to_turn
from toolgym.rollout.trajectory import Trajectory, Turn


def recorded(observation: str = "again") -> Trajectory:
    turns = [Turn("12ab", observation=observation), Turn("9999", observation="")]
    return Trajectory("toytest/Digits-v0", "t1", turns, final_reward=1.0, seed=3)


def test_replay_reaches_the_boundary_and_the_episode_continues_from_there() -> None:
    env = DigitsEnv(turns=2)
    obs, info = run_sync(replay_to_turn(env, recorded(), 1))
    assert (obs, env.turn, info["task_id"]) == ("again", 1, "t1")
    _, reward, terminated, _, _ = run_sync(env.astep("9999"))  # the continuation
    assert terminated and reward == 1.0
    obs, _ = run_sync(replay_to_turn(env, recorded(), 0))
    assert obs == "n1" and env.turn == 0


def test_a_different_observation_is_reported_not_used() -> None:
    with pytest.raises(ReplayDiverged, match="diverged at turn 0") as err:
        run_sync(replay_to_turn(DigitsEnv(turns=2), recorded("something else"), 1))
    assert err.value.got == "again"
    with pytest.raises(ValueError, match="turn must be in"):
        run_sync(replay_to_turn(DigitsEnv(turns=2), recorded(), 2))
