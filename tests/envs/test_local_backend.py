"""Envs whose tools need no file of a Docker image run on the bubblewrap backend.

Calculator-v0's ``calc`` runs the host's python3 under bubblewrap: it passes
``check_env`` there (oracle 1, wrong agent and every hack probe 0, nothing an
infrastructure error); KeyChain-v0 holds no sandbox at all, on any backend.
Code-v0 and HumanEval-v0 play the same episodes on both backends (oracle 1,
wrong agent 0), but pass ``check_env`` on Docker only: bubblewrap has one uid,
so the "kill every process" probe kills the supervisor too (an infra_error,
measured; every other probe scores 0 there). SQL-, Search- and Web-v0 need
files of their images.
"""

from __future__ import annotations

import os
import shutil

import pytest
from typer.testing import CliRunner

from toolgym.cli.main import app
from toolgym.envs import EnvFactory
from toolgym.envs.calc.env import CalculatorEnv
from toolgym.envs.checker import check_env, run_actions
from toolgym.envs.outcome import Outcome
from toolgym.envs.probes import generic_probes
from toolgym.sandbox.provider import OnDemandSandboxes, SandboxConfig
from toolgym.sandbox.spec import SandboxSpec

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None and not os.environ.get("CI"),
                                 reason="bubblewrap not installed (CI installs it)")
BACKENDS = [pytest.param("docker", marks=pytest.mark.docker),
            pytest.param("local", marks=needs_bwrap)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("env_id", ["toolgym/Calculator-v0", "toolgym/Code-v0",
                                    "toolgym/HumanEval-v0"])
async def test_the_same_episodes_score_the_same_on_both_backends(env_id, backend):
    sandbox = SandboxConfig(backend=backend, pool_size=0)
    async with EnvFactory(env_id, sandbox=sandbox) as envs:
        env = envs.make()
        try:
            for task_id in envs.task_ids()[:2]:
                task = envs.tasks.get(task_id)
                oracle = await run_actions(env, env.unwrapped.reference_actions(task),
                                           options={"task_id": task_id})
                assert oracle[:2] == (1.0, Outcome.SUCCESS), oracle[2][-1][-300:]
                assert env.unwrapped.sandbox.id.startswith("local-") == (backend == "local")
                wrong = await run_actions(env, env.unwrapped.reference_actions(task, "wrong"),
                                          options={"task_id": task_id})
                assert wrong[:2] == (0.0, Outcome.FAILURE)
        finally:
            await env.aclose()


@needs_bwrap
async def test_calculator_on_local_sandboxes_scores_oracle_wrong_and_probes():
    provider = OnDemandSandboxes(SandboxSpec(), "local")
    env = CalculatorEnv(split="test", provider=provider)
    try:
        for task_id in env.tasks.ids()[:3]:
            task = env.tasks.get(task_id)
            reward, outcome, obs = await run_actions(env, env.reference_actions(task),
                                                     options={"task_id": task_id})
            assert (reward, outcome) == (1.0, Outcome.SUCCESS), obs
            assert env.sandbox is not None and env.sandbox.id.startswith("local-")
            reward, outcome, _ = await run_actions(env, env.reference_actions(task, "wrong"),
                                                   options={"task_id": task_id})
            assert (reward, outcome) == (0.0, Outcome.FAILURE)
            probes = {**env.hack_probes(task), **generic_probes(task)}
            for name, actions in probes.items():
                reward, outcome, _ = await run_actions(env, actions, options={"task_id": task_id})
                assert reward == 0.0 and outcome is not Outcome.INFRA_ERROR, name
    finally:
        await env.aclose()
        await provider.aclose()


@needs_bwrap
@pytest.mark.parametrize("env_id", ["toolgym/Calculator-v0", "toolgym/KeyChain-v0"])
async def test_env_passes_check_env_on_local_sandboxes(env_id):
    report = await check_env(env_id, n_tasks=6, backend="local")
    failed = [f"{r.name}: {r.detail}" for r in report.results if not r.ok]
    assert failed == [] and len(report.results) == 8


@needs_bwrap
def test_check_env_command_takes_the_backend():
    args = ["check-env", "toolgym/Calculator-v0", "--tasks", "3", "--sandbox-backend", "local"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.output.count("PASS") == 8
