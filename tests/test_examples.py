"""``examples/grpo_minimal.py``: its one-file GRPO loop plays real groups and learns from them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers.examples import EXAMPLES, load_example
from tests.helpers.tiny_model import build_tiny_model
from tests.trainers.conftest import synthetic_groups
from toolgym.agents import HFAgent, SamplingParams
from toolgym.envs import EnvFactory
from toolgym.sandbox.provider import SandboxConfig
from toolgym.trainers.logprobs import token_logprobs


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), chat_template="chatml")


def mean_action_logprob(agent: HFAgent, trajectories) -> float:
    total, count = 0.0, 0
    with torch.no_grad():
        for traj in trajectories:
            sample = traj.samples()[0]
            ids = torch.tensor([sample.input_ids])
            logp = token_logprobs(agent.model, ids, torch.ones_like(ids))[0][0]
            mask = torch.tensor(sample.loss_mask, dtype=torch.bool)
            total, count = total + logp[mask].sum().item(), count + int(mask.sum())
    return total / count


def test_one_step_raises_the_rewarded_episodes_and_lowers_the_others(model_dir: Path) -> None:
    example = load_example("grpo_minimal")
    torch.manual_seed(0)
    agent = HFAgent(model_dir)
    groups = synthetic_groups(model_dir, n_groups=4, group_size=4, seed=1)
    for group in groups:  # two winners and two losers per group: every group carries signal
        for i, traj in enumerate(group):
            traj.final_reward = float(i < 2)
    trajectories = [t for g in groups for t in g]
    winners = [t for t in trajectories if t.final_reward]
    losers = [t for t in trajectories if not t.final_reward]
    before = mean_action_logprob(agent, winners), mean_action_logprob(agent, losers)
    optimizer = torch.optim.SGD(agent.model.parameters(), lr=0.5)
    stats = example.grpo_step(agent, optimizer, trajectories)
    after = mean_action_logprob(agent, winners), mean_action_logprob(agent, losers)
    assert after[0] > before[0]
    assert after[1] < before[1]
    assert agent.policy_version == 1
    assert abs(stats["kl_to_sampler"]) < 1e-4  # the sampler's logprobs were the policy's own
    agent.close()


def test_a_step_without_signal_changes_nothing(model_dir: Path) -> None:
    example = load_example("grpo_minimal")
    agent = HFAgent(model_dir)
    trajectories = [t for g in synthetic_groups(model_dir, 2, 3, seed=2) for t in g]
    for traj in trajectories:
        traj.final_reward = 1.0
    weights = [p.detach().clone() for p in agent.model.parameters()]
    assert example.grpo_step(agent, torch.optim.SGD(agent.model.parameters(), lr=1.0),
                             trajectories) == {"loss": 0.0}
    assert all(torch.equal(a, b) for a, b in zip(weights, agent.model.parameters(), strict=True))
    agent.close()


@pytest.mark.docker
async def test_play_groups_runs_group_size_episodes_per_task_in_sandboxes(
        model_dir: Path, python_image: str) -> None:
    example = load_example("grpo_minimal")
    agent = HFAgent(model_dir, sampling=SamplingParams(max_new_tokens=8), seed=0)
    sandboxes = SandboxConfig(pool_size=2, max_size=6)
    async with EnvFactory("toolgym/Calculator-v0", sandbox=sandboxes, split="train") as envs:
        task_ids = envs.task_ids()[:3]
        trajectories = await example.play_groups(envs, agent, task_ids, group_size=2, seed=0)
    await agent.aclose()
    assert sorted(t.group_id for t in trajectories) == sorted(task_ids * 2)
    assert all(t.task_id == t.group_id and t.trainable for t in trajectories)
    assert all(t.outcome in ("success", "failure", "truncated") for t in trajectories)


@pytest.mark.parametrize(("command", "config"), [("train", "calculator_grpo.yaml"),
                                                 ("sft", "calculator_sft.yaml")])
def test_example_configs_resolve(command: str, config: str) -> None:
    from typer.testing import CliRunner

    from toolgym.cli.train import app

    result = CliRunner().invoke(app, [command, str(EXAMPLES / config), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "toolgym/Calculator-v0" in result.output
