"""EnvFactory: describe without an episode env, one provider from a ``sandbox:`` section,
envs bound to it; the rollout manager and evaluate run through it on bubblewrap."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.helpers import counting_backend
from toolgym.envs.factory import EnvFactory
from toolgym.envs.outcome import Outcome
from toolgym.errors import ConfigError, SandboxError, UnknownEnv
from toolgym.rollout.manager import RolloutConfig, RolloutManager
from toolgym.rollout.reference import ReferenceAgent
from toolgym.sandbox import backends
from toolgym.sandbox.pool import SandboxPool
from toolgym.sandbox.provider import OnDemandSandboxes, SandboxConfig
from toolgym.trainers.config import from_dict

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None and not os.environ.get("CI"),
                                 reason="bubblewrap not installed (CI installs it)")
CALC = "toolgym/Calculator-v0"


def test_describes_an_env_without_a_sandbox_or_a_provider():
    envs = EnvFactory(CALC, split="test", n_test=40)
    assert len(envs.task_ids()) == 40 and envs.task_ids("test") == envs.task_ids()
    assert envs.sandbox_spec is not None and envs.sandbox_spec.image == "toolgym/python:latest"
    assert list(envs.tools) == ["calc"] and envs.provider is None
    with pytest.raises(SandboxError, match="astart"):
        envs.make()
    keychain = EnvFactory("toolgym/KeyChain-v0")
    assert keychain.sandbox_spec is None  # needs no provider: make() works unstarted
    keychain.make().close()


def test_refuses_unknown_ids_and_two_sandbox_sources():
    with pytest.raises(UnknownEnv, match="Did you mean 'toolgym/Calculator-v0'"):
        EnvFactory("toolgym/Calculater-v0")
    with pytest.raises(ConfigError, match="not both"):
        EnvFactory(CALC, sandbox=SandboxConfig(), provider=OnDemandSandboxes())


def test_the_sandbox_section_loads_from_config_and_is_checked():
    config = from_dict(RolloutConfig, {"env_id": CALC, "sandbox": {"backend": "local",
                                                                   "pool_size": 0}})
    assert config.sandbox == SandboxConfig(backend="local", pool_size=0)
    with pytest.raises(ConfigError, match="Unknown config key 'sandbox.pool'"):
        from_dict(RolloutConfig, {"env_id": CALC, "sandbox": {"pool": 2}})
    with pytest.raises(ConfigError, match="max_size must be"):
        SandboxConfig(pool_size=4, max_size=2)


@needs_bwrap
async def test_envs_made_after_astart_share_one_local_provider():
    async with EnvFactory(CALC, sandbox=SandboxConfig(backend="local", pool_size=0),
                          split="test") as envs:
        provider = envs.provider
        assert isinstance(provider, OnDemandSandboxes) and provider.backend.name == "local"
        task = envs.tasks.get(envs.task_ids()[0])
        for _ in range(2):
            env = envs.make()
            await env.areset(options={"task_id": task.id})
            for action in env.unwrapped.reference_actions(task):
                _, reward, terminated, _, info = await env.astep(action)
            assert (reward, info["outcome"]) == (1.0, Outcome.SUCCESS)
            first_id = env.unwrapped.sandbox.id
            await env.aclose()
        assert provider._spare is not None and provider._spare.id == first_id  # reused, clean
    assert envs.provider is None and provider._spare is None


@needs_bwrap
async def test_rollout_manager_runs_on_the_configured_backend_and_closes_its_pool():
    config = RolloutConfig(env_id=CALC, group_size=1, concurrency=3, split="test",
                           sandbox=SandboxConfig(backend="local", max_size=3))
    agent = ReferenceAgent(CALC)
    manager = RolloutManager(config, agent)
    ids = manager.envs.task_ids("test")[:4]
    trajs = [t async for t in manager.run(ids)]
    pool = manager.provider
    assert isinstance(pool, SandboxPool) and pool.backend.name == "local"
    assert pool.config.size == 3 and pool.config.max_size == 3
    assert sorted(t.task_id for t in trajs) == sorted(ids)
    assert {t.outcome for t in trajs} == {"success"}
    await manager.aclose()
    await agent.aclose()
    assert manager.provider is None and pool.total == 0


@needs_bwrap
async def test_a_backend_registered_from_tests_serves_a_factory(monkeypatch):
    monkeypatch.setattr(backends, "_registry", backends._registry.copy())
    backends.register_backend("counting", counting_backend.CountingBackend)
    counting_backend.CALLS.clear()
    async with EnvFactory(CALC, sandbox=SandboxConfig(backend="counting", pool_size=1),
                          split="test") as envs:
        env = envs.make()
        obs, _ = await env.areset(seed=0)
        assert obs and env.unwrapped.sandbox is not None
        await env.aclose()
    assert counting_backend.CALLS["create"] >= 1 and counting_backend.CALLS["reap"] == 1
