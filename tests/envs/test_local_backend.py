"""Envs whose tools need no file of a Docker image run on the bubblewrap backend.

Calculator-v0's ``calc`` runs the host's python3 under bubblewrap: the oracle
scores 1, the wrong agent and every hack probe 0, and nothing ends as an
infrastructure error (KeyChain-v0 holds no sandbox at all).
"""

from __future__ import annotations

import os
import shutil

import pytest

from toolgym.envs.calc.env import CalculatorEnv
from toolgym.envs.checker import run_actions
from toolgym.envs.outcome import Outcome
from toolgym.envs.probes import generic_probes
from toolgym.sandbox.provider import OnDemandSandboxes
from toolgym.sandbox.spec import SandboxSpec

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None and not os.environ.get("CI"),
                                reason="bubblewrap not installed (CI installs it)")


async def test_calculator_on_local_sandboxes_scores_oracle_wrong_and_probes():
    provider = OnDemandSandboxes(SandboxSpec(), "local")
    env = CalculatorEnv(split="test", pool=provider)
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
