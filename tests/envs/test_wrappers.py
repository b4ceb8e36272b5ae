"""``Budget``: the turn and token limits, and that a truncated episode stays over."""

from __future__ import annotations

import gymnasium
import pytest

from toolgym.envs.latency import LatencyEnv
from toolgym.envs.outcome import Outcome
from toolgym.envs.wrappers import Budget
from toolgym.errors import ToolgymError


@pytest.mark.parametrize(("limits", "by"), [({"max_turns": 2}, "turns"),
                                            ({"max_tokens": 6}, "tokens")])
async def test_a_truncated_episode_is_not_stepped_again(limits, by):
    """After Budget returned truncated, the next step ran the inner env's tools again."""
    inner = LatencyEnv(turns=10)
    env = Budget(inner, **limits)
    await env.areset()
    _, _, terminated, truncated, _ = await env.astep("a")
    assert not (terminated or truncated)
    _, reward, terminated, truncated, info = await env.astep("b")
    assert (reward, terminated, truncated) == (0.0, False, True)
    assert (info["outcome"], info["truncated_by"]) == (Outcome.TRUNCATED, by)
    with pytest.raises(ToolgymError, match="truncated"):
        await env.astep("c")
    with pytest.raises(ToolgymError, match="truncated"):
        env.step("c")
    assert inner.step_count == 2
    await env.areset()
    assert (await env.astep("a"))[3] is False and inner.step_count == 1


class Tagging(Budget):
    """A wrapper with async twins that marks every observation it passes up."""

    async def astep(self, action):
        obs, reward, terminated, truncated, info = await super().astep(action)
        return f"tagged {obs}", reward, terminated, truncated, info


async def test_budget_steps_the_wrappers_beneath_it():
    """Budget stepped env.unwrapped, skipping every wrapper between it and the env."""
    env = Budget(Tagging(LatencyEnv(turns=3)), max_turns=2)
    await env.areset()
    obs, *_ = await env.astep("a")
    assert obs == "tagged obs 1"
    *_, truncated, info = await env.astep("b")
    assert truncated and info["truncated_by"] == "turns"
    await env.aclose()


def test_budget_refuses_a_wrapper_without_async_twins():
    with pytest.raises(ToolgymError, match="no async twins"):
        Budget(gymnasium.wrappers.OrderEnforcing(LatencyEnv()), max_turns=2)
