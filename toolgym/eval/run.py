"""``evaluate``: run an agent ``samples`` times on each task of an env, and keep every episode.

An evaluation of 164 tasks x 8 samples with a real model runs for hours, so
what finishes must survive what does not: each trajectory is appended to
``out_dir/trajectories.jsonl`` the moment it ends (one whole line per write,
see :func:`~toolgym.rollout.trajectory.write_jsonl`), and running the same
evaluation again skips the (task, sample) pairs already in the file. Ctrl-C,
a killed process or a crashed endpoint therefore cost only the episodes in
flight. When the run ends (or is cancelled) ``summary.json`` and
``report.html`` are written from the file, so they always describe everything
that finished, not just this invocation.

``infra_error`` episodes are recorded (a dropped episode gets a stub
trajectory saying why), excluded from pass@k and counted on their own; a
re-run retries them, since they carry no signal about the agent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from toolgym.agents.base import Agent
from toolgym.agents.templates import ChatTokenizer
from toolgym.envs.factory import EnvFactory
from toolgym.errors import ConfigError, InfrastructureFailing, ToolgymError
from toolgym.eval.metrics import INFRA_ERROR, EvalSummary, summarize
from toolgym.eval.report import write_report
from toolgym.rollout.manager import RolloutConfig, RolloutManager
from toolgym.rollout.trajectory import Trajectory, read_jsonl, write_jsonl
from toolgym.sandbox.provider import SandboxConfig, SandboxProvider

log = logging.getLogger(__name__)

TRAJECTORIES = "trajectories.jsonl"
SUMMARY = "summary.json"
REPORT = "report.html"
META = "meta.json"
"""What identifies an evaluation directory: env, agent and seed (a re-run must match)."""

Pair = tuple[str, int]
"""(task id, sample index): the unit of work, and of resuming."""
Progress = Callable[[int, int, Trajectory], None]
"""Called with (finished this run, to do this run, the trajectory) after each episode."""


async def evaluate(
    env_id: str,
    agent: Agent,
    *,
    samples: int,
    concurrency: int,
    out_dir: str | Path,
    task_ids: Sequence[str] | None = None,
    split: str | None = None,
    agent_name: str | None = None,
    chat: ChatTokenizer | None = None,
    provider: SandboxProvider | None = None,
    sandbox: SandboxConfig | None = None,
    seed: int = 0,
    episode_timeout_s: float = 600.0,
    env_kwargs: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> EvalSummary:
    """Evaluate ``agent`` on ``env_id``: ``samples`` episodes per task, ``concurrency`` at once.

    Args:
        env_id: A registered env id, e.g. ``toolgym/HumanEval-v0``.
        agent: Any :class:`~toolgym.agents.base.Agent`; the caller closes it.
        samples: Episodes per task; pass@1..``samples`` are reported.
        concurrency: Episodes in flight at once (and the default pool's size limit).
        out_dir: Where the trajectories, summary and report go; created if missing.
        task_ids: Tasks to run, in report order (default: every task of ``split``).
        split: Task split (e.g. ``"test"``); None: all tasks.
        agent_name: How the summary and report name the agent (default: its class).
        chat: Tokenizer for token-in/token-out prompts (an ``HFAgent``'s ``.chat``).
        provider: Sandboxes to use (the caller starts and closes them); default: the
            provider ``sandbox`` asks for, sized to ``concurrency`` and the episodes
            left, started only if there is work left.
        sandbox: The ``sandbox:`` section (backend, pool sizes); default: a Docker pool.
        seed: Sample ``s`` of a task runs with seed ``seed + s``.
        episode_timeout_s: A longer episode is dropped (counted as ``infra_error``).
        env_kwargs: Extra arguments of the env's constructor.
        progress: See :data:`Progress`.

    Returns:
        The summary of every finished (task, sample) pair in ``out_dir``.

    Raises:
        ConfigError: bad counts, an unknown split, or ``out_dir`` holds another evaluation.
        UnknownEnv / UnknownTask: no such env, or no such task id.
    """
    if samples < 1 or concurrency < 1:
        raise ConfigError(f"samples and concurrency must be >= 1, got {samples}, {concurrency}")
    envs = EnvFactory(env_id, provider=provider, sandbox=sandbox, **(env_kwargs or {}))
    ids = await _checked_ids(envs, task_ids, split)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = agent_name or type(agent).__name__
    _check_meta(out, {"env_id": env_id, "agent": name, "seed": seed})
    done = {p for p, t in latest_per_pair(load_trajectories(out / TRAJECTORIES)).items()
            if t.outcome != INFRA_ERROR}
    todo = [(t, s) for t in ids for s in range(samples) if (t, s) not in done]
    config = RolloutConfig(env_id, concurrency=concurrency, split=split, seed=seed,
                           episode_timeout_s=episode_timeout_s, env_kwargs=dict(env_kwargs or {}))
    start, stats = time.perf_counter(), {}
    try:
        if todo:
            try:
                await envs.astart(concurrency, episodes=len(todo))
                stats = await _run(config, agent, chat, envs, todo, out / TRAJECTORIES, progress)
            finally:
                await envs.aclose()
    finally:  # on cancellation too: the summary and report cover what finished
        extra = {"split": split, "seed": seed, "run_wall_s": time.perf_counter() - start,
                 "run_episodes": len(todo), "rollout_stats": stats}
        summary = write_outputs(out, env_id, name, samples, ids, extra=extra)
    return summary


async def list_task_ids(env_id: str, split: str | None = None) -> list[str]:
    """Every task id of ``env_id`` (of ``split`` when given), in the source's order.

    Raises:
        UnknownEnv: no such env.
        ConfigError: the env has no task in ``split``.
    """
    return await _checked_ids(EnvFactory(env_id), None, split)


async def _checked_ids(envs: EnvFactory, task_ids: Sequence[str] | None,
                       split: str | None) -> list[str]:
    """The task ids to run: ``task_ids`` checked against ``split``'s, or all of them."""
    tasks = (await envs.adescribe()).tasks
    tasks = tasks.split(split) if split else tasks
    ids = list(task_ids) if task_ids is not None else list(tasks.ids())
    for task_id in ids:
        tasks.get(task_id)  # raises UnknownTask with close matches
    if len(set(ids)) != len(ids):
        raise ConfigError("task_ids has duplicates; use samples= for repeated episodes")
    return ids


async def _run(config: RolloutConfig, agent: Agent, chat: ChatTokenizer | None,
               envs: EnvFactory, todo: list[Pair], path: Path,
               progress: Progress | None) -> dict[str, int]:
    """Run the pairs through a RolloutManager, appending each trajectory as it ends."""
    manager = RolloutManager(config, agent, chat=chat, envs=envs)
    finished = 0

    async def one(task_id: str, sample: int) -> None:
        nonlocal finished
        traj = await _episode(manager, task_id, sample)
        write_jsonl(path, [traj])
        finished += 1
        if progress is not None:
            progress(finished, len(todo), traj)

    runs = [asyncio.ensure_future(one(t, s)) for t, s in todo]
    try:
        await asyncio.gather(*runs)
    finally:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
    return dict(manager.stats)


async def _episode(manager: RolloutManager, task_id: str, sample: int) -> Trajectory:
    """One episode; a dropped or failed one becomes an ``infra_error`` stub, never a 0."""
    seed = manager.config.seed + sample
    error = None
    try:
        traj = await manager.episode(task_id, seed=seed, group_id=f"{task_id}#eval")
        if traj is None:
            error = ("dropped by the rollout manager: infra_error on every retry, "
                     f"or longer than episode_timeout_s={manager.config.episode_timeout_s}")
    except InfrastructureFailing:
        raise  # the platform is down: stop the run, not one more stub
    except (ToolgymError, OSError) as exc:
        traj, error = None, f"episode failed: {exc!r}"
    if traj is None:
        traj = Trajectory(env_id=manager.config.env_id, task_id=task_id, outcome=INFRA_ERROR,
                          seed=seed, group_id=f"{task_id}#eval", info={"error": error})
    traj.info["sample"] = sample
    return traj


def load_trajectories(path: Path) -> list[Trajectory]:
    """Every trajectory in ``path`` (none if it is missing), after cutting a torn last line.

    A killed writer can leave half a line; appending after it would glue the
    next record onto it and corrupt the file, so it is cut off first.
    """
    if not path.exists():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
        log.warning("%s: cutting a torn last line (%d bytes) left by an interrupted run",
                    path, len(data) - keep)
        os.truncate(path, keep)
    return list(read_jsonl(path))


def latest_per_pair(trajectories: Iterable[Trajectory]) -> dict[Pair, Trajectory]:
    """One trajectory per (task, sample): the last scored one, else the last infra error."""
    chosen: dict[Pair, Trajectory] = {}
    for traj in trajectories:
        sample = traj.info.get("sample")
        if not isinstance(sample, int):
            continue  # not written by evaluate
        key = (traj.task_id, sample)
        old = chosen.get(key)
        if old is None or traj.outcome != INFRA_ERROR or old.outcome == INFRA_ERROR:
            chosen[key] = traj
    return chosen


def write_outputs(out: Path, env_id: str, agent: str, samples: int, task_ids: Sequence[str],
                  *, extra: dict[str, Any] | None = None) -> EvalSummary:
    """Write ``summary.json`` and ``report.html`` from the trajectories file of ``out``."""
    pairs = latest_per_pair(load_trajectories(out / TRAJECTORIES))
    wanted = {(t, s) for t in task_ids for s in range(samples)}
    order = {t: i for i, t in enumerate(task_ids)}
    trajs = [pairs[p] for p in sorted(wanted & pairs.keys(), key=lambda p: (order[p[0]], p[1]))]
    complete = wanted <= pairs.keys()
    summary = summarize(env_id, agent, samples, task_ids, trajs, complete=complete, extra=extra)
    _write_atomic(out / SUMMARY, json.dumps(summary.to_json(), indent=2) + "\n")
    write_report(out / REPORT, summary, trajs)
    return summary


def _check_meta(out: Path, meta: dict[str, Any]) -> None:
    """Refuse to mix two evaluations in one directory; record this one's identity."""
    path = out / META
    if path.exists():
        old = json.loads(path.read_text())
        diff = [f"{k}: {old.get(k)!r} there, {v!r} asked" for k, v in meta.items()
                if old.get(k) != v]
        if diff:
            raise ConfigError(
                f"{out} holds another evaluation ({'; '.join(diff)}). Pass another output "
                "directory, or delete this one to start over.")
        return
    _write_atomic(path, json.dumps(meta, indent=2) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
