"""The sampler and the trainer agree: on-policy, before any update, the ratio is 1.

Each test here failed on the code before issue 13 (acf7ae8): the trainer
recomputed logprobs with temperature only while the sampler recorded top-p
truncated ones, Dr.GRPO's divisor depended on the micro-batch, ...
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.trainers.conftest import grpo_config
from tests.trainers.toy_env import DigitsEnv
from toolgym.agents import ChatTokenizer, SamplingParams
from toolgym.agents.hf import HFAgent
from toolgym.envs.wrappers import Budget
from toolgym.rollout.episode import run_episode
from toolgym.trainers.grpo import GRPOTrainer
from toolgym.trainers.turn_batch import after_last_turn, turn_contexts


def test_step0_ratio_is_one_with_temperature_and_top_p(tiny_dir: Path, tmp_path: Path) -> None:
    cfg = grpo_config(tmp_path / "run", tiny_dir, total_steps=1, export_final=False,
                      sampling={"temperature": 0.7, "top_p": 0.8, "max_new_tokens": 8})
    history = GRPOTrainer(cfg, echo=None).train()
    # before the fix: 0.80 (the sampler's nucleus-renormalised logprobs against tempered ones)
    assert history[0]["ratio_mean"] == pytest.approx(1.0, abs=1e-3)
    assert history[0]["approx_kl"] == pytest.approx(0.0, abs=1e-4)


async def test_a_truncated_episode_bootstraps_from_the_next_prompt(tiny_dir: Path) -> None:
    chat = ChatTokenizer.from_pretrained(tiny_dir)
    agent = HFAgent(tiny_dir, chat, seed=0, sampling=SamplingParams(max_new_tokens=4))
    # the env would answer "again"; a one-turn budget cuts the episode there (truncated)
    traj = await run_episode(Budget(DigitsEnv(turns=2), max_turns=1), agent, chat=chat,
                             task_id="t1")
    await agent.aclose()
    assert traj.outcome == "truncated"
    after = after_last_turn(traj)
    context = turn_contexts(traj)[-1] + traj.turns[-1].action_ids
    # before the fix: the context and the action only, a state the policy never acts from
    assert after[: len(context)] == context and len(after) > len(context)
    assert chat.decode(after[len(context):]).endswith(
        "<|im_start|>user\nagain<|im_end|>\n<|im_start|>assistant\n")
