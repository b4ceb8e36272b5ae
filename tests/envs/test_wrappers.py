"""``Budget``: the turn and token limits, and that a truncated episode stays over."""

from __future__ import annotations

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
