"""Continuations: recorded turns replay, then the agent carries on; or replay says it cannot."""

from __future__ import annotations

import pytest

import toolgym.envs  # noqa: F401 - registers the built-in envs
from tests.trainers.toy_env import DigitsEnv
from toolgym.agents.base import AgentBase, AgentTurn, Conversation
from toolgym.envs.calc import calc_tasks, oracle_actions
from toolgym.errors import ReplayDiverged
from toolgym.rollout import RolloutConfig, RolloutManager
from toolgym.rollout.episode import run_episode
from toolgym.rollout.replay import PrefixAgent, check_prefix
from toolgym.rollout.trajectory import Trajectory, Turn


class Says(AgentBase):
    """Always answers ``text``; counts its calls."""

    def __init__(self, text: str) -> None:
        self.text, self.calls = text, 0

    async def act(self, conversation: Conversation) -> AgentTurn:
        self.calls += 1
        return AgentTurn(self.text, token_ids=[1], logprobs=[0.0])


def recorded(observation: str = "again", turns: int = 2) -> Trajectory:
    steps = [Turn("12ab", [5, 6], [-0.5, -0.25], observation=observation),
             Turn("9999", observation="")][:turns]
    return Trajectory("toytest/Digits-v0", "t1", steps, final_reward=1.0, seed=3)


async def test_the_recorded_turns_are_replayed_then_the_agent_continues() -> None:
    agent = Says("77xx")
    rec = recorded()
    cont = await run_episode(DigitsEnv(turns=2), PrefixAgent(agent, rec.turns[:1]),
                             task_id=rec.task_id, seed=rec.seed)
    check_prefix(cont, rec, 1)
    assert [t.action_text for t in cont.turns] == ["12ab", "77xx"] and agent.calls == 1
    assert cont.turns[0].action_logprobs == [-0.5, -0.25]  # the recorded ids, verbatim
    assert cont.final_reward == 0.5  # the continuation's own outcome, not the recorded one
    from_start = await run_episode(DigitsEnv(turns=2), PrefixAgent(agent, []), task_id="t1")
    check_prefix(from_start, rec, 0)
    assert [t.action_text for t in from_start.turns] == ["77xx", "77xx"]


async def test_a_different_observation_is_reported_not_used() -> None:
    rec = recorded("something else")
    cont = await run_episode(DigitsEnv(turns=2), PrefixAgent(Says("1"), rec.turns[:1]),
                             task_id=rec.task_id, seed=rec.seed)
    with pytest.raises(ReplayDiverged, match="diverged at turn 0") as err:
        check_prefix(cont, rec, 1)
    assert err.value.got == "again"


async def test_an_episode_that_ends_before_the_boundary_is_reported() -> None:
    rec = recorded("")  # recorded on a two-turn env, replayed on a one-turn one
    cont = await run_episode(DigitsEnv(turns=1), PrefixAgent(Says("1"), rec.turns[:1]),
                             task_id=rec.task_id, seed=rec.seed)
    with pytest.raises(ReplayDiverged, match="<episode ended>"):
        check_prefix(cont, rec, 1)


class OracleByTurn(AgentBase):
    """Answers turn ``k`` of any episode with ``actions[k]`` (k = assistant turns so far)."""

    def __init__(self, actions: list[str]) -> None:
        self.actions = actions

    async def act(self, conversation: Conversation) -> AgentTurn:
        k = sum(m["role"] == "assistant" for m in conversation.messages)
        return AgentTurn(self.actions[k])


@pytest.mark.docker
async def test_a_continuation_replays_real_tool_calls_in_a_docker_sandbox(python_image) -> None:
    task = next(t for t in calc_tasks().split("train") if len(oracle_actions(t)) >= 3)
    config = RolloutConfig(env_id="toolgym/Calculator-v0", group_size=1, concurrency=2)
    manager = RolloutManager(config, OracleByTurn(oracle_actions(task)))
    try:
        original = await manager.episode(task.id, seed=1)
        assert original is not None and original.final_reward == 1.0
        cont = await manager.continuation(original, 2)  # two calc calls replayed in a sandbox
    finally:
        await manager.aclose()
    assert cont is not None and cont.final_reward == 1.0
    assert [t.observation for t in cont.turns] == [t.observation for t in original.turns]
    assert manager.stats["continuations"] == 1 and manager.stats["replay_diverged"] == 0
    assert manager.stats["continuation_env_steps"] == len(original.turns)
