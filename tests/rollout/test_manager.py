"""RolloutManager scheduling, on a stub env beneath it (latencies, failures) and a scripted
agent."""

from __future__ import annotations

import asyncio
import itertools

import gymnasium
import pytest

from toolgym.agents.base import AgentBase, AgentTurn, Conversation
from toolgym.envs.latency import LatencyEnv
from toolgym.errors import ConfigError, InfrastructureFailing, ToolgymError
from toolgym.rollout import RolloutConfig, RolloutManager


class VersionedAgent(AgentBase):
    """Answers 'good'; tags each turn with the version it was 'sampled' under."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.version = 0
        self.delay_s = delay_s
        self.in_flight = self.peak = 0

    async def act(self, conversation: Conversation) -> AgentTurn:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
            return AgentTurn("good", token_ids=[1], logprobs=[0.0], policy_version=self.version)
        finally:
            self.in_flight -= 1


def config(**kw) -> RolloutConfig:
    base = dict(env_id="toolgym-test/Latency-v0", group_size=4, concurrency=8,
                env_kwargs={"latency_s": 0.01})
    return RolloutConfig(**{**base, **kw})


async def test_staleness_bound_holds_under_a_concurrent_trainer():
    agent = VersionedAgent(delay_s=0.005)
    manager = RolloutManager(config(max_staleness=1), agent)
    await manager.start()
    try:
        for version in range(1, 6):
            batch = await manager.get_batch(2)
            assert all(manager.staleness(g) <= 1 for g in batch)
            assert all(len({t.group_id for t in g}) == 1 and len(g) == 4 for g in batch)
            await asyncio.sleep(0.05)  # the "optimiser step", while rollouts go on
            agent.version = version
            manager.set_policy_version(version)
    finally:
        await manager.aclose()
    assert manager.stats["stale_dropped"] > 0, "some groups went stale and were dropped"
    assert agent.peak <= 8, "never more episodes in flight than the concurrency limit"


async def test_infra_failures_are_retried_then_dropped_never_scored():
    LatencyEnv.failures_left = 2
    manager = RolloutManager(config(max_infra_retries=2, group_size=1), VersionedAgent())
    trajs = [t async for t in manager.run(["t1"], samples=1)]
    assert [t.outcome for t in trajs] == ["success"] and manager.stats["infra_retries"] == 2
    LatencyEnv.failures_left = 10
    manager = RolloutManager(config(max_infra_retries=1), VersionedAgent())
    trajs = [t async for t in manager.run(["t1"], samples=1)]
    LatencyEnv.failures_left = 0
    assert trajs == [] and manager.stats["infra_dropped"] == 1 and manager.stats["episodes"] == 0


async def test_slow_episodes_time_out_and_are_counted():
    manager = RolloutManager(config(episode_timeout_s=0.2, env_kwargs={"latency_s": 5.0}),
                             VersionedAgent())
    assert [t async for t in manager.run(["t0", "t1"])] == []
    assert manager.stats["timeouts"] == 2


async def test_partial_abort_cancels_episodes_of_old_weights():
    agent = VersionedAgent()
    manager = RolloutManager(config(partial="abort", env_kwargs={"latency_s": 0.5}), agent)
    await manager.start()
    await asyncio.sleep(0.3)
    manager.set_policy_version(1)
    await asyncio.sleep(0.05)
    await manager.aclose()
    assert manager.stats["aborted"] > 0


def test_config_errors_name_the_choices():
    with pytest.raises(ConfigError, match="'drop' or 'keep'"):
        RolloutConfig(env_id="x", stale="sometimes")


async def test_the_producer_runs_ahead_only_as_far_as_groups_can_stay_fresh():
    manager = RolloutManager(config(max_staleness=1), VersionedAgent())
    assert manager.config.queue_size == 4  # 8 in flight / 4 per group = 2 groups, x 2 versions
    await manager.start()
    try:
        await asyncio.sleep(0.5)  # ~0.02 s per group: it would queue dozens if it could
        assert manager._queue is not None and manager._queue.qsize() == 4
    finally:
        await manager.aclose()
    assert RolloutConfig(env_id="x", max_queued_groups=64).queue_size == 64
    with pytest.raises(ConfigError, match="max_queued_groups must be >= 1"):
        RolloutConfig(env_id="x", max_queued_groups=0)


class LateReplyEnv(LatencyEnv):
    """A step whose reply arrives together with a cancellation and is returned anyway.

    Real steps do this on Python 3.11: ``asyncio.wait_for`` (the sandbox channel's reply
    wait, the pool's wait for a free sandbox) returns a result that is already there
    instead of raising the cancellation. Steps last 10-40 ms, so a group's episodes
    end at different times; stepping after ``aclose`` is the bug the test looks for.
    """

    stepped_after_close = 0
    stepping: asyncio.Event
    """Set when a step starts: the test closes the manager mid-episode."""
    _instances = itertools.count()

    def __init__(self, **kwargs) -> None:
        super().__init__(turns=4, **kwargs)
        self.step_s = 0.01 * (1 + next(self._instances) % 4)
        self.closed = False

    async def astep(self, action: str):
        if self.closed:
            LateReplyEnv.stepped_after_close += 1
            raise ToolgymError("The episode is over (or never started): call reset() first.")
        LateReplyEnv.stepping.set()
        try:
            await asyncio.sleep(self.step_s)
        except asyncio.CancelledError:
            pass  # the reply came with the cancellation: returned, as wait_for does
        return await super().astep(action)

    async def aclose(self) -> None:
        self.closed = True


gymnasium.register("toolgym-test/LateReply-v0", entry_point=LateReplyEnv)


async def test_aclose_waits_for_every_episode_and_none_is_stepped_after_its_env_closed():
    manager = RolloutManager(config(env_id="toolgym-test/LateReply-v0", env_kwargs={}),
                             VersionedAgent())
    LateReplyEnv.stepping = asyncio.Event()
    await manager.start()
    await LateReplyEnv.stepping.wait()
    await manager.aclose()
    left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    results = await asyncio.gather(*left, return_exceptions=True)  # what outlived aclose
    assert left == [], f"still running after aclose: {left}; they ended with {results}"
    assert LateReplyEnv.stepped_after_close == 0


async def test_a_platform_that_keeps_failing_stops_training_instead_of_hanging():
    """With every episode an infra error (a dead Docker daemon), get_batch waited forever."""
    from toolgym.errors import InfrastructureFailing

    LatencyEnv.failures_left = 10**6
    manager = RolloutManager(config(max_infra_streak=20), VersionedAgent())
    await manager.start()
    try:
        with pytest.raises(InfrastructureFailing, match=r"last \d+ episode attempts") as caught:
            await asyncio.wait_for(manager.get_batch(2), 30)
        assert caught.value.last_error == "stub" and caught.value.streak >= 20
    finally:
        LatencyEnv.failures_left = 0
        await manager.aclose()
    assert manager.stats["infra_retries"] + manager.stats["infra_dropped"] >= 19
    # A streak is broken by any episode that works: scattered failures never stop a run.
    LatencyEnv.failures_left = 2
    manager = RolloutManager(config(max_infra_streak=3, max_infra_retries=2, group_size=1),
                             VersionedAgent())
    assert [t.outcome for t in [t async for t in manager.run(["t1", "t2"])]] == ["success"] * 2
    LatencyEnv.failures_left = 0


async def test_a_slow_host_is_retried_and_counted_but_never_stops_the_run():
    """Under load, browser starts ran out of time episode after episode and the streak meant
    for a dead daemon stopped the run; slow attempts are retried and counted instead."""
    LatencyEnv.slow_resets_left = 12
    manager = RolloutManager(config(max_infra_streak=3, max_infra_retries=2, group_size=1,
                                    concurrency=1), VersionedAgent())
    try:
        trajs = [t async for t in manager.run([f"t{i}" for i in range(6)])]
    finally:
        LatencyEnv.slow_resets_left = 0
    # 12 slow attempts in a row, 4 times the streak: the run went on
    assert manager.stats["infra_slow"] == 12 and manager.stats["episode_errors"] == 0
    assert trajs and all(t.outcome == "success" for t in trajs)
    # the streak still stops a platform that fails for good
    LatencyEnv.failures_left = 10**6
    manager = RolloutManager(config(max_infra_streak=3, group_size=1, concurrency=1),
                             VersionedAgent())
    try:
        with pytest.raises(InfrastructureFailing):
            await manager.episode("t0")
    finally:
        LatencyEnv.failures_left = 0
