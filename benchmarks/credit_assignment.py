"""Credit assignment benchmark: token-level vs turn-level estimators on ``toolgym/KeyChain-v0``.

The question (issue 8, "Proof it helps"): on a multi-turn env where one turn's
mistake spoils the episode, does giving each turn its own advantage learn
faster per environment step than smearing one outcome advantage over every
turn? Each method trains the same tiny model from the same warm start with
the same budget (training steps x episodes per step), on one torch thread,
for each seed in turn. Env steps are counted from what each method actually
ran: the turns of the episodes it trained on, plus, for VinePPO, every step
of its continuation rollouts (replayed turns included). The arms (``--methods``):
``grpo`` and ``ppo`` (token level), ``gigpo``, ``turn_return``, ``turn_gae``,
``archer``, ``vine`` (turn level, ``algorithm: turn_level``) and ``bilevel``
(turn-level GAE above token-level GAE); ``archer_*`` are ArCHer ablations.
Outputs, under ``--out``:

- ``curves.png``: training success against cumulative env steps and against
  training steps, mean over seeds with a standard-error band, smoothed over
  ``--window`` steps;
- ``table.md``: final success (mean of the last ``--window`` steps of each
  seed; mean +- sd over seeds) and the env steps each method needs before its
  seed-mean curve first reaches GRPO's final success;
- ``results.json``: every step of every run, for replotting (``--replot``,
  and ``--merge`` to join runs made by separate processes).

The warm start is built once per benchmark run (seed 0) and shared: a ~0.5 M
parameter Llama with a byte-level BPE tokenizer trained on the env's
transcripts, SFT on *imperfect* demonstrations (wrong keys, miscopied
answers) so that RL has groups with mixed outcomes. Seeds vary everything
after that (sampling, task draws, update shuffling, critic init).

Run: ``.venv/bin/python benchmarks/credit_assignment.py`` (~50 min of CPU for
the eight arms x 3 seeds, VinePPO a third of it); ``--help`` for the budget knobs.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

import toolgym  # noqa: F401 - registers the envs
from toolgym.agents import SamplingParams
from toolgym.agents.templates import ChatTokenizer
from toolgym.envs.keychain import demonstration, keychain_tasks
from toolgym.rollout import RolloutConfig
from toolgym.rollout.transcripts import trajectory_from_messages
from toolgym.trainers.archer import ArCHerConfig, ArCHerTrainer
from toolgym.trainers.base import Trainer, TrainerConfig
from toolgym.trainers.bilevel import BiLevelConfig, BiLevelTrainer
from toolgym.trainers.critic import CriticConfig
from toolgym.trainers.grpo import GRPOConfig, GRPOTrainer
from toolgym.trainers.optim import OptimConfig
from toolgym.trainers.policy import ModelConfig
from toolgym.trainers.ppo import PPOConfig, PPOTrainer
from toolgym.trainers.sft import SFTConfig, SFTTrainer
from toolgym.trainers.tiny_lm import (
    TinyLMConfig,
    build_tiny_lm,
    render_chats,
    save_model_dir,
    train_tokenizer,
)
from toolgym.trainers.turn_level import TurnLevelConfig, TurnLevelTrainer

ENV = "toolgym/KeyChain-v0"
MODEL = TinyLMConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                     num_attention_heads=4, max_position_embeddings=256, vocab_size=320)
"""~0.3 M parameters: the DESIGN.md recipe's size, fast on one core."""


@dataclass(frozen=True)
class Method:
    """One arm of the comparison: a label, a config class and its trainer."""

    name: str
    config_class: type[TrainerConfig]
    trainer_class: type[Trainer]
    extra: tuple[tuple[str, Any], ...] = ()
    """Fields beyond the shared ones (the estimator)."""


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("grpo", GRPOConfig, GRPOTrainer),
    Method("gigpo", TurnLevelConfig, TurnLevelTrainer, (("turn_estimator", "gigpo"),)),
    Method("turn_return", TurnLevelConfig, TurnLevelTrainer, (("turn_estimator", "turn_return"),)),
    Method("turn_gae", TurnLevelConfig, TurnLevelTrainer, (("turn_estimator", "turn_gae"),)),
    Method("archer", ArCHerConfig, ArCHerTrainer),
    Method("vine", TurnLevelConfig, TurnLevelTrainer,
           (("turn_estimator", "vine"), ("vine_samples", 1))),
    Method("ppo", PPOConfig, PPOTrainer),
    Method("bilevel", BiLevelConfig, BiLevelTrainer),
    # ArCHer ablations: the critic before the fix, and the fix less one of its parts.
    Method("archer_before", ArCHerConfig, ArCHerTrainer, (("critic", CriticConfig(
        match_tokens=0, updates_per_step=8, warmup_steps=0, whiten=False)),)),
    Method("archer_bag", ArCHerConfig, ArCHerTrainer,
           (("critic", CriticConfig(match_tokens=0)),)),
    Method("archer_cold", ArCHerConfig, ArCHerTrainer,
           (("critic", CriticConfig(warmup_steps=0)),)),
    Method("archer_raw", ArCHerConfig, ArCHerTrainer,
           (("critic", CriticConfig(whiten=False)),)),
)}


@dataclass(frozen=True)
class Budget:
    """What every method gets: the same steps, batch and optimiser."""

    steps: int = 20
    groups: int = 8
    group_size: int = 8
    lr: float = 1e-3
    max_new_tokens: int = 8
    depth: int = 3
    """Key lookups before the answer (the env's ``depth``); the turn budget is depth + 2."""


@dataclass(frozen=True)
class Run:
    """One method on one seed: per training step, env steps so far and training success."""

    method: str
    seed: int
    env_steps: list[float]
    success: list[float]
    seconds: float


# ------------------------------------------------------------- warm start
def warm_start(out: Path, *, sft_steps: int, n_demos: int, depth: int = 3, seed: int = 0,
               echo: Callable[[str], None] = print) -> Path:
    """Tokenizer and tiny model from scratch, SFT on imperfect demos; the SFT model's path."""
    rng = random.Random(seed)
    train = list(keychain_tasks(depth=depth).split("train"))[:n_demos]
    demos = [demonstration(t, rng, max_turns=depth + 2) for t in train]
    texts = render_chats(d.messages for d in demos)
    tokenizer = train_tokenizer(texts, vocab_size=MODEL.vocab_size)
    model = build_tiny_lm(tokenizer, MODEL, seed=seed)
    base = save_model_dir(out / "base", model, tokenizer)
    chat = ChatTokenizer(tokenizer)
    trajs = [trajectory_from_messages(chat, d.messages, env_id=ENV, task_id=t.id,
                                      outcome="success" if d.correct else "failure",
                                      final_reward=float(d.correct))
             for t, d in zip(train, demos, strict=True)]
    config = SFTConfig(run_dir=str(out / "sft"), seed=seed, total_steps=sft_steps, batch_size=32,
                       only_success=False, tensorboard=False, model=ModelConfig(path=str(base)),
                       optim=OptimConfig(lr=3e-3, warmup_steps=10))
    t0 = time.perf_counter()
    SFTTrainer(config, trajectories=trajs, echo=None).train()
    n_params = sum(p.numel() for p in model.parameters())
    echo(f"warm start: {n_params / 1e6:.2f} M parameters, vocab {len(tokenizer)}, "
         f"{len(demos)} demos ({sum(d.correct for d in demos) / len(demos):.0%} correct), "
         f"SFT {sft_steps} steps in {time.perf_counter() - t0:.0f} s")
    return out / "sft" / "final"


# ------------------------------------------------------------------ runs
def method_config(method: Method, *, model_dir: Path, run_dir: Path, seed: int,
                  budget: Budget) -> TrainerConfig:
    """The shared config (DESIGN.md's recipe: temperature 1, no KL, cosine LR) plus the arm's."""
    fields: dict[str, Any] = dict(
        run_dir=str(run_dir), seed=seed, total_steps=budget.steps, groups_per_step=budget.groups,
        micro_batch_size=64, save_every=0, tensorboard=False, export_final=False,
        save_trajectories=False, model=ModelConfig(path=str(model_dir)),
        optim=OptimConfig(lr=budget.lr, schedule="cosine"),
        rollout=RolloutConfig(env_id=ENV, group_size=budget.group_size,
                              concurrency=budget.groups * budget.group_size, split="train",
                              env_kwargs={"depth": budget.depth, "max_turns": budget.depth + 2},
                              max_staleness=1, seed=seed),
        sampling=SamplingParams(temperature=1.0, max_new_tokens=budget.max_new_tokens),
    )
    return method.config_class(**fields, **dict(method.extra))


def run_one(method: Method, seed: int, *, model_dir: Path, out: Path, budget: Budget) -> Run:
    """Train ``method`` from the warm start; success and cumulative env steps per step."""
    config = method_config(method, model_dir=model_dir, run_dir=out / f"{method.name}-s{seed}",
                           seed=seed, budget=budget)
    t0 = time.perf_counter()
    history = method.trainer_class(config, echo=None).train()
    seconds = time.perf_counter() - t0
    steps, total = [], 0.0
    for h in history:  # VinePPO's continuations are env steps too (replayed turns included)
        total += h["episodes"] * h["turns_mean"] + h.get("vine_env_steps", 0.0)
        steps.append(total)
    return Run(method.name, seed, steps, [h["success_rate"] for h in history], seconds)


# --------------------------------------------------------------- summary
def smooth(values: Sequence[float], window: int) -> list[float]:
    """Trailing moving average (the first points average what there is)."""
    return [statistics.fmean(values[max(0, i + 1 - window):i + 1]) for i in range(len(values))]


def mean_curve(runs: Sequence[Run], window: int) -> tuple[list[float], list[list[float]]]:
    """Env steps (mean over seeds) and each seed's smoothed success, per training step."""
    n = min(len(r.success) for r in runs)
    x = [statistics.fmean(r.env_steps[i] for r in runs) for i in range(n)]
    return x, [smooth(r.success[:n], window) for r in runs]


def final_success(run: Run, window: int) -> float:
    """Mean training success over the last ``window`` steps."""
    return statistics.fmean(run.success[-window:])


def steps_to_reach(runs: Sequence[Run], target: float, window: int) -> float | None:
    """Env steps at which the seed-mean smoothed success first reaches ``target`` (None: never)."""
    x, ys = mean_curve(runs, window)
    for i, xi in enumerate(x):
        if statistics.fmean(y[i] for y in ys) >= target - 1e-9:
            return xi
    return None


def table(by_method: dict[str, list[Run]], window: int) -> str:
    """Markdown: final success mean +- sd, env steps to GRPO's final success, wall time."""
    target = statistics.fmean(final_success(r, window) for r in by_method["grpo"])
    lines = [f"| method | final success (mean ± sd, {len(by_method['grpo'])} seeds) | "
             f"env steps to reach GRPO's final {target:.3f} | env steps in budget | "
             "wall s / run |", "|---|---|---:|---:|---:|"]
    for name, runs in by_method.items():
        finals = [final_success(r, window) for r in runs]
        sd = statistics.stdev(finals) if len(finals) > 1 else 0.0
        reach = steps_to_reach(runs, target, window)
        budget = statistics.fmean(r.env_steps[-1] for r in runs)
        wall = statistics.fmean(r.seconds for r in runs)
        lines.append(f"| {name} | {statistics.fmean(finals):.3f} ± {sd:.3f} | "
                     f"{'not reached' if reach is None else f'{reach:,.0f}'} | {budget:,.0f} | "
                     f"{wall:.0f} |")
    return "\n".join(lines)


def plot(by_method: dict[str, list[Run]], path: Path, window: int, title: str) -> Path:
    """Success against env steps (left) and against training steps (right).

    Lines are the mean over seeds, bands the standard error of that mean.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, (by_env, by_step) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for name, runs in by_method.items():
        x, ys = mean_curve(runs, window)
        mean = [statistics.fmean(y[i] for y in ys) for i in range(len(x))]
        se = [statistics.stdev(y[i] for y in ys) / len(ys) ** 0.5 if len(ys) > 1 else 0.0
              for i in range(len(x))]
        low = [m - e for m, e in zip(mean, se, strict=True)]
        high = [m + e for m, e in zip(mean, se, strict=True)]
        steps = list(range(1, len(x) + 1))
        for ax, xs in ((by_env, x), (by_step, steps)):
            line, = ax.plot(xs, mean, linewidth=2, label=f"{name} ({len(runs)} seeds)")
            ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.15)
    by_env.set_xscale("log")
    by_env.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    by_env.xaxis.set_minor_formatter(NullFormatter())
    by_env.set_xlabel("environment steps (turns), VinePPO's continuations included")
    by_env.set_ylabel(f"training success (moving mean of {window} steps)")
    by_step.set_xlabel("training step (one batch of groups)")
    for ax in (by_env, by_step):
        ax.grid(alpha=0.3)
    by_step.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{title}; bands: ± 1 standard error over seeds", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------ main
def benchmark(out: Path, *, methods: Sequence[str], seeds: Sequence[int], budget: Budget,
              sft_steps: int, n_demos: int, window: int,
              echo: Callable[[str], None] = print) -> dict[str, list[Run]]:
    """Warm start, then every method on every seed (sequentially); writes table, PNG, JSON."""
    torch.set_num_threads(1)
    out.mkdir(parents=True, exist_ok=True)
    model_dir = warm_start(out, sft_steps=sft_steps, n_demos=n_demos, depth=budget.depth,
                           echo=echo)
    by_method: dict[str, list[Run]] = {}
    for name in methods:
        for seed in seeds:
            run = run_one(METHODS[name], seed, model_dir=model_dir, out=out, budget=budget)
            by_method.setdefault(name, []).append(run)
            echo(f"{name:12s} seed {seed}: success {run.success[0]:.2f} -> "
                 f"{final_success(run, window):.2f} over {run.env_steps[-1]:,.0f} env steps "
                 f"in {run.seconds:.0f} s")
            (out / "results.json").write_text(json.dumps(  # after every run: a crash keeps them
                {"budget": vars(budget), "sft_steps": sft_steps, "window": window,
                 "runs": [vars(r) for rs in by_method.values() for r in rs]}, indent=1))
    report(by_method, out, budget=budget, window=window, echo=echo)
    return by_method


def report(by_method: dict[str, list[Run]], out: Path, *, budget: Budget, window: int,
           echo: Callable[[str], None] = print) -> None:
    """Write ``table.md`` (when GRPO ran) and ``curves.png`` from finished runs."""
    if "grpo" in by_method:
        md = table(by_method, window)
        (out / "table.md").write_text(md + "\n")
        echo(md)
    title = (f"{ENV} (depth {budget.depth}): {budget.steps} steps x {budget.groups} tasks x "
             f"{budget.group_size} episodes, tiny LM, CPU")
    echo(f"plot: {plot(by_method, out / 'curves.png', window, title)}")


def replot(out: Path, merge: Sequence[Path] = ()) -> None:
    """Table and plot again from ``out/results.json`` (e.g. of a run that was cut short).

    ``merge``: other benchmark directories whose runs join these (the same
    budget and warm start, run at another time); ``out/results.json`` is
    rewritten with all of them.
    """
    path = out / "results.json"
    data = json.loads(path.read_text()) if path.exists() else None
    for other in merge:
        more = json.loads((other / "results.json").read_text())
        if data is None:
            data = more
            continue
        if (more["budget"], more["sft_steps"]) != (data["budget"], data["sft_steps"]):
            raise SystemExit(f"{other}: another budget or warm start than {out}; not merged")
        data["runs"] += more["runs"]
    if data is None:
        raise SystemExit(f"no {path} and nothing to merge")
    if merge:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1))
    by_method: dict[str, list[Run]] = {}
    for r in data["runs"]:
        by_method.setdefault(r["method"], []).append(Run(**r))
    report(by_method, out, budget=Budget(**data["budget"]), window=data["window"])


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the budget knobs and run :func:`benchmark`."""
    defaults = Budget()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("runs/credit_assignment"))
    p.add_argument("--methods", nargs="+", choices=list(METHODS),
                   default=[m for m in METHODS if not m.startswith("archer_")])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=defaults.steps, help="training steps per run")
    p.add_argument("--groups", type=int, default=defaults.groups, help="tasks per step")
    p.add_argument("--group-size", type=int, default=defaults.group_size)
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--depth", type=int, default=defaults.depth,
                   help="key lookups before the answer (harder credit assignment when larger)")
    p.add_argument("--sft-steps", type=int, default=400)
    p.add_argument("--demos", type=int, default=1000)
    p.add_argument("--window", type=int, default=3, help="smoothing / final-success window")
    p.add_argument("--replot", action="store_true",
                   help="only rewrite table.md and curves.png from OUT/results.json")
    p.add_argument("--merge", nargs="+", type=Path, default=[], metavar="DIR",
                   help="with --replot: add the runs of these benchmark directories")
    args = p.parse_args(argv)
    if args.replot:
        replot(args.out, args.merge)
        return
    budget = replace(defaults, steps=args.steps, groups=args.groups,
                     group_size=args.group_size, lr=args.lr, depth=args.depth)
    start = time.perf_counter()
    benchmark(args.out, methods=args.methods, seeds=args.seeds, budget=budget,
              sft_steps=args.sft_steps, n_demos=args.demos, window=args.window)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
