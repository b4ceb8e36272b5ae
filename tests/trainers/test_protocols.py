"""The trainer's protocols: which real agents and sources have which capability."""

from __future__ import annotations

from pathlib import Path

from tests.trainers.conftest import ReplaySource
from tests.trainers.toy_env import ENV_ID  # importing it registers the env
from toolgym.agents.hf import HFAgent
from toolgym.agents.openai_http import OpenAIAgent
from toolgym.agents.scripted import ScriptedAgent
from toolgym.rollout.manager import RolloutConfig, RolloutManager
from toolgym.trainers.base import default_weight_sync
from toolgym.trainers.protocols import (
    ContinuingSource,
    RolloutSource,
    SharedModelAgent,
    TrainableAgent,
)


def test_the_in_process_agent_is_trainable_and_shares_its_model(tiny_dir: Path) -> None:
    agent = HFAgent(tiny_dir, seed=0)
    try:
        assert isinstance(agent, TrainableAgent) and isinstance(agent, SharedModelAgent)
    finally:
        agent.close()


def test_agents_without_weights_are_sampled_from_and_left_alone() -> None:
    scripted = ScriptedAgent(["1"])
    remote = OpenAIAgent("http://127.0.0.1:9/v1", "m")
    assert not isinstance(scripted, TrainableAgent)
    assert not isinstance(remote, TrainableAgent)  # its server's weights sync elsewhere


async def test_weight_sync_skips_an_agent_that_is_not_trainable() -> None:
    await default_weight_sync(ScriptedAgent(["1"]), "copy")(None, 1)  # no policy read


def test_the_rollout_manager_can_continue_episodes_a_replay_cannot() -> None:
    manager = RolloutManager(RolloutConfig(env_id=ENV_ID), ScriptedAgent(["1"]))
    replay = ReplaySource([])
    assert isinstance(manager, ContinuingSource)
    assert isinstance(replay, RolloutSource) and not isinstance(replay, ContinuingSource)
