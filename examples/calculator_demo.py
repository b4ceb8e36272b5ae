"""The main job: a tiny LM learns to use a calculator tool, by SFT then GRPO, on a CPU.

1. Build a ~1.4 M-parameter Llama and a BPE tokenizer trained on the env's own
   transcripts, saved as an ordinary model directory (``from_pretrained`` loads it).
2. SFT on deliberately imperfect demonstrations: half answer "About N" instead
   of calling the tool, so the warm-started policy calls the tool only part of
   the time and RL has groups with both outcomes to learn from.
3. Evaluate greedily on held-out test tasks (never seen in training).
4. GRPO against ``toolgym/Calculator-v0``: every ``calc`` call runs in a Docker sandbox.
5. Evaluate again; print both success rates with Wilson 95 % intervals, write
   the learning curve. Run: `.venv/bin/python examples/calculator_demo.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from pathlib import Path

import toolgym  # noqa: F401 - registers the envs
from toolgym.agents import HFAgent, SamplingParams
from toolgym.agents.templates import ChatTokenizer
from toolgym.envs.calc import calc_tasks, demonstrations
from toolgym.eval.metrics import wilson_interval
from toolgym.eval.run import evaluate
from toolgym.rollout import RolloutConfig
from toolgym.rollout.transcripts import trajectory_from_messages
from toolgym.sandbox.cleanup import exit_on_sigterm
from toolgym.trainers.grpo import GRPOConfig, GRPOTrainer
from toolgym.trainers.optim import OptimConfig
from toolgym.trainers.plot import plot_run
from toolgym.trainers.policy import ModelConfig
from toolgym.trainers.sft import SFTConfig, SFTTrainer
from toolgym.trainers.tiny_lm import build_tiny_lm, render_chats, save_model_dir, train_tokenizer

ENV = "toolgym/Calculator-v0"
MIX = {"expr1": 0.4, "expr2": 0.4, "words": 0.2}
"""Task kinds of the demo: two-number questions, in symbols or in words (see
``toolgym.envs.calc.tasks``). Longer expressions need more numbers copied
exactly, more than a 0.7 M model learns in a few minutes of SFT."""
ENV_KWARGS = {"mix": MIX}
GUESS = 0.5
"""Share of demonstrations that answer without the tool. Only this *decision* is
wrong in them: demos that miscopy numbers (``p_mistype``/``p_miscopy``) taught
the tiny model imprecise copying, which GRPO then had to repair token by token."""
TEMPERATURE = 0.7
"""Sampling temperature of the GRPO rollouts. At 1.0 the tiny model miscopies
so many numbers that few groups hold a success to learn from."""


def build_base(run: Path, seed: int) -> tuple[Path, list]:
    """Tokenizer trained on the demos, a fresh tiny model, and the demos as token trajectories."""
    train = list(calc_tasks(mix=MIX).split("train"))
    demos = demonstrations(train, seed=seed, p_guess=GUESS, p_mistype=0.0, p_miscopy=0.0)
    tokenizer = train_tokenizer(render_chats(d.messages for d in demos))
    model = build_tiny_lm(tokenizer, seed=seed)
    path = save_model_dir(run / "base", model, tokenizer)
    chat = ChatTokenizer(tokenizer)
    trajs = [trajectory_from_messages(chat, d.messages, env_id=ENV, task_id=task.id,
                                      outcome="success" if d.correct else "failure",
                                      final_reward=float(d.correct))
             for task, d in zip(train, demos, strict=True)]
    n_params = sum(p.numel() for p in model.parameters())
    print(f"[1/5] tiny model: {n_params / 1e6:.2f} M parameters, vocab {len(tokenizer)}; "
          f"{len(demos)} demonstrations, {sum(d.correct for d in demos) / len(demos):.0%} correct")
    return path, trajs


def sft(run: Path, base: Path, trajs: list, seed: int, steps: int) -> Path:
    config = SFTConfig(run_dir=str(run / "sft"), seed=seed, total_steps=steps, batch_size=32,
                       only_success=False, tensorboard=False, num_threads=2,
                       model=ModelConfig(path=str(base)),
                       optim=OptimConfig(lr=3e-3, warmup_steps=20))
    t0 = time.perf_counter()
    SFTTrainer(config, trajectories=trajs, echo=None).train()
    print(f"[2/5] SFT: {steps} steps in {time.perf_counter() - t0:.0f} s")
    return run / "sft" / "final"


async def held_out_success(model_dir: Path, out: Path, n_tasks: int, seed: int) -> tuple[int, int]:
    """Greedy success on the first ``n_tasks`` test tasks."""
    agent = HFAgent(model_dir, sampling=SamplingParams(temperature=0.0, max_new_tokens=64),
                    max_batch=64)
    test_ids = calc_tasks(mix=MIX).split("test").ids()[:n_tasks]
    try:
        summary = await evaluate(ENV, agent, samples=1, concurrency=64, out_dir=out,
                                 task_ids=test_ids, agent_name=f"hf:{model_dir}", chat=agent.chat,
                                 env_kwargs=ENV_KWARGS,
                                 seed=seed)
    finally:
        await agent.aclose()
    wins = sum(t.successes for t in summary.tasks)
    return wins, sum(t.samples for t in summary.tasks)


def grpo(run: Path, sft_model: Path, seed: int, steps: int, lr: float) -> Path:
    config = GRPOConfig(
        run_dir=str(run / "grpo"), seed=seed, total_steps=steps, groups_per_step=16,
        micro_batch_size=64, save_every=0, tensorboard=False,
        model=ModelConfig(path=str(sft_model)),
        optim=OptimConfig(lr=lr, schedule="cosine"),
        rollout=RolloutConfig(env_id=ENV, group_size=8, concurrency=64, split="train",
                              max_staleness=1, seed=seed,
                              env_kwargs=ENV_KWARGS),
        sampling=SamplingParams(temperature=TEMPERATURE, max_new_tokens=64),
    )
    t0 = time.perf_counter()
    GRPOTrainer(config, echo=None).train()
    print(f"[4/5] GRPO: {steps} steps x 16 tasks x 8 episodes in {time.perf_counter() - t0:.0f} s")
    return run / "grpo" / "final"


def report(name: str, wins: int, n: int) -> str:
    low, high = wilson_interval(wins, n)
    return f"{name}: {wins}/{n} = {wins / n:.2f} (95 % CI {low:.2f}-{high:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="runs/demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sft-steps", type=int, default=800)
    parser.add_argument("--grpo-steps", type=int, default=60)
    parser.add_argument("--grpo-lr", type=float, default=3e-4)
    parser.add_argument("--eval-tasks", type=int, default=600)
    args = parser.parse_args()
    run, start = Path(args.run_dir) / f"seed{args.seed}", time.perf_counter()
    random.seed(args.seed)
    base, trajs = build_base(run, args.seed)
    sft_model = sft(run, base, trajs, args.seed, args.sft_steps)
    before = asyncio.run(held_out_success(sft_model, run / "eval_sft", args.eval_tasks, args.seed))
    print("[3/5] " + report("held-out success after SFT", *before))
    final = grpo(run, sft_model, args.seed, args.grpo_steps, args.grpo_lr)
    after = asyncio.run(held_out_success(final, run / "eval_grpo", args.eval_tasks, args.seed))
    pngs = plot_run(run / "grpo")
    print("[5/5] " + report("held-out success after GRPO", *after))
    print(report("  before RL", *before))
    print(report("  after RL ", *after))
    print(f"learning curves: {', '.join(str(p) for p in pngs)}; reports: "
          f"{run / 'eval_sft' / 'report.html'}, {run / 'eval_grpo' / 'report.html'}")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    exit_on_sigterm()
    main()
