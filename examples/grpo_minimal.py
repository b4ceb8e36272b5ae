"""GRPO on a toolgym environment in one file, to read top to bottom.

Each step: draw tasks; play ``G`` episodes of each at once (every tool call
runs in a Docker sandbox from one warm pool; the agent records the exact token
ids it sampled and their logprobs); give each episode its group-relative
advantage; take one clipped policy-gradient step on the sampled tokens only;
the agent samples the next step with the new weights (same model object).

:class:`toolgym.trainers.grpo.GRPOTrainer` does the same with what a real run
needs (async rollouts with bounded staleness, micro-batches, checkpoints and
resume, metrics, LoRA); ``make demo`` runs it. This file is for reading.

Run (after ``make demo``, which leaves an SFT-warm-started model behind)::

    .venv/bin/python examples/grpo_minimal.py --model runs/demo/seed0/sft/final
"""

from __future__ import annotations

import argparse
import asyncio
import random

import torch

import toolgym  # noqa: F401 - registers the built-in envs
from toolgym.agents import HFAgent, SamplingParams
from toolgym.envs import EnvFactory
from toolgym.rollout import Trajectory
from toolgym.rollout.episode import run_episode
from toolgym.sandbox.provider import SandboxConfig
from toolgym.trainers.advantages import grpo_advantages
from toolgym.trainers.batching import build_batch
from toolgym.trainers.logprobs import token_logprobs
from toolgym.trainers.losses import masked_mean, policy_loss


async def play_groups(envs: EnvFactory, agent: HFAgent, task_ids: list[str],
                      group_size: int, seed: int) -> list[Trajectory]:
    """``group_size`` episodes of every task, all at once; one group id per task."""

    async def episode(task_id: str, index: int) -> Trajectory:
        env = envs.make()  # cheap: the sandbox comes from the factory's warm pool
        try:
            return await run_episode(env, agent, chat=agent.chat, task_id=task_id,
                                     seed=seed + index, group_id=task_id)
        finally:
            await env.aclose()

    return list(await asyncio.gather(*(episode(task_id, i) for task_id in task_ids
                                       for i in range(group_size))))


def grpo_step(agent: HFAgent, optimizer: torch.optim.Optimizer,
              trajectories: list[Trajectory]) -> dict[str, float]:
    """One policy-gradient step: advantages, log-probs under the current weights, clipped loss."""
    pad_id = agent.chat.tokenizer.pad_token_id or agent.chat.eos_token_ids[0]
    batch, _ = build_batch(trajectories, pad_id=pad_id,
                           advantage_fn=grpo_advantages)  # drops infra errors, pads
    if not batch.num_action_tokens or not batch.advantages.any():
        return {"loss": 0.0}  # every group all right or all wrong: no signal this step
    with agent.lock:  # no generate while the weights change
        agent.model.train()
        logprobs, _ = token_logprobs(agent.model, batch.input_ids, batch.attention_mask)
        # One update per batch, so the "old" policy is the one that sampled:
        # the ratio is 1 and clipping only matters for the stale samples of async runs.
        loss, stats = policy_loss(logprobs, batch.behaviour_logprobs, batch.advantages,
                                  batch.loss_mask)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(agent.model.parameters(), 1.0)
        optimizer.step()
        agent.model.eval()
    agent.policy_version += 1  # stamped on the turns sampled from now on
    return {"loss": loss.item(), "kl_to_sampler": masked_mean(
        batch.behaviour_logprobs - logprobs.detach(), batch.loss_mask).item()}


async def main(args: argparse.Namespace) -> None:
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    agent = HFAgent(args.model, sampling=SamplingParams(temperature=1.0, max_new_tokens=64),
                    seed=args.seed, max_batch=args.tasks * args.group_size)
    optimizer = torch.optim.AdamW(agent.model.parameters(), lr=args.lr)
    sandboxes = SandboxConfig(backend=args.sandbox_backend, pool_size=8, max_size=32)
    async with EnvFactory(args.env, sandbox=sandboxes, split="train") as envs:
        train_ids = envs.task_ids()  # described once: no env built per question
        for step in range(1, args.steps + 1):
            task_ids = random.sample(train_ids, args.tasks)
            trajectories = await play_groups(envs, agent, task_ids, args.group_size,
                                             seed=args.seed * 100_000 + step * 1000)
            stats = grpo_step(agent, optimizer, trajectories)
            success = sum(t.outcome == "success" for t in trajectories) / len(trajectories)
            print(f"step {step}: success {success:.2f}, loss {stats['loss']:+.4f}")
    await agent.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a model directory (from_pretrained)")
    parser.add_argument("--env", default="toolgym/Calculator-v0", help="a registered env id")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=8, help="tasks per step")
    parser.add_argument("--group-size", type=int, default=8, help="episodes per task")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sandbox-backend", default="docker", help="docker, local (bubblewrap)")
    asyncio.run(main(parser.parse_args()))
