"""pass@k and the other numbers of an evaluation, computed from trajectories.

pass@k is the unbiased estimator of Chen et al. (2021, "Evaluating Large
Language Models Trained on Code"): with ``n`` samples of a task of which ``c``
succeed, the chance that at least one of ``k`` samples drawn without
replacement succeeds is ``1 - C(n-c, k) / C(n, k)``. Taking the best of ``k``
independent runs instead would be biased upwards; taking ``c/n``'s power would
be biased too. The binomials overflow floats for large ``n`` (C(200, 100) is
about 9e58 and C(2000, 1000) no float at all), so they are kept as Python's exact
integers and divided once: ``(C(n, k) - C(n-c, k)) / C(n, k)`` is rounded a
single time, which makes the result exact to the last bit (0.4, not 0.39999...).

``infra_error`` episodes (a dead sandbox, a crashed verifier) say nothing about
the agent: they are left out of ``n`` and counted on their own, never scored 0.
A task whose scored samples are fewer than ``k`` has no pass@k; the mean over
tasks then says how many tasks it covers.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from toolgym.rollout.trajectory import Trajectory

INFRA_ERROR = "infra_error"
OUTCOMES = ("success", "failure", "truncated", "agent_error", INFRA_ERROR)
"""Every outcome, in the order reports show them."""


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one task: ``1 - C(n-c, k) / C(n, k)``.

    Args:
        n: Scored samples of the task.
        c: How many of them succeeded.
        k: Samples the estimate is for (``1 <= k <= n``).

    Raises:
        ValueError: ``k`` is out of ``[1, n]`` or ``c`` out of ``[0, n]``.

    Example:
        >>> pass_at_k(5, 2, 1), round(pass_at_k(5, 2, 2), 6)
        (0.4, 0.7)
    """
    if not 1 <= k <= n:
        raise ValueError(f"pass@k needs 1 <= k <= n, got n={n}, k={k}")
    if not 0 <= c <= n:
        raise ValueError(f"successes must be in [0, n], got c={c}, n={n}")
    if n - c < k:  # every draw of k contains a success
        return 1.0
    total = math.comb(n, k)
    return (total - math.comb(n - c, k)) / total  # int / int: correctly rounded, no overflow


@dataclass(frozen=True)
class TaskResult:
    """One task's row of the report."""

    task_id: str
    samples: int
    """Scored samples (``infra_error`` left out)."""
    successes: int
    infra_errors: int
    outcomes: dict[str, int]
    """Every outcome's count, ``infra_error`` included."""
    mean_turns: float | None
    """Mean turns of the scored samples; None when there are none."""
    mean_reward: float | None
    pass_at: dict[int, float]
    """pass@k for every ``k <= samples``."""


@dataclass(frozen=True)
class EvalSummary:
    """Everything ``summary.json`` holds; :meth:`to_json` is its on-disk form."""

    env_id: str
    agent: str
    samples: int
    """Samples asked for per task (the k of pass@1..k)."""
    tasks: list[TaskResult]
    pass_at_k: dict[int, float]
    """Mean over the tasks that have at least k scored samples."""
    pass_at_k_tasks: dict[int, int]
    """How many tasks each mean covers."""
    outcomes: dict[str, int]
    episodes: int
    """Trajectories summarised, ``infra_error`` included."""
    tokens: dict[str, float]
    timing: dict[str, float]
    complete: bool = True
    """False when some (task, sample) pairs have not finished (an interrupted run)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Run facts (wall time, rollout-manager counters, split, seed)."""

    @property
    def infra_errors(self) -> int:
        """Episodes that ended in ``infra_error`` (not scored)."""
        return self.outcomes.get(INFRA_ERROR, 0)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; integer keys of pass@k become ``"1"``, ``"2"`` ..."""
        data = asdict(self)
        data["infra_errors"] = self.infra_errors
        data["pass_at_k"] = {str(k): v for k, v in self.pass_at_k.items()}
        data["pass_at_k_tasks"] = {str(k): v for k, v in self.pass_at_k_tasks.items()}
        for row in data["tasks"]:
            row["pass_at"] = {str(k): v for k, v in row["pass_at"].items()}
        return data


def task_result(task_id: str, trajectories: Sequence[Trajectory]) -> TaskResult:
    """Outcome counts, pass@1..n and mean turns of one task's trajectories."""
    outcomes = Counter(t.outcome or "unknown" for t in trajectories)
    scored = [t for t in trajectories if t.outcome != INFRA_ERROR]
    n, c = len(scored), sum(t.outcome == "success" for t in scored)
    return TaskResult(
        task_id=task_id,
        samples=n,
        successes=c,
        infra_errors=outcomes[INFRA_ERROR],
        outcomes=dict(outcomes),
        mean_turns=sum(len(t.turns) for t in scored) / n if n else None,
        mean_reward=sum(t.final_reward for t in scored) / n if n else None,
        pass_at={k: pass_at_k(n, c, k) for k in range(1, n + 1)},
    )


def summarize(
    env_id: str,
    agent: str,
    samples: int,
    task_ids: Sequence[str],
    trajectories: Iterable[Trajectory],
    *,
    complete: bool = True,
    extra: dict[str, Any] | None = None,
) -> EvalSummary:
    """Summarise one trajectory per (task, sample): per-task rows and the means.

    Args:
        env_id: The env evaluated.
        agent: How the report names the agent.
        samples: Samples asked for per task; pass@1..``samples`` are reported.
        task_ids: The tasks, in the order the report lists them (tasks
            without trajectories get an empty row).
        trajectories: At most one per (task, sample).
        complete: Whether every (task, sample) pair has a trajectory.
        extra: Run facts to keep in the summary.
    """
    by_task: dict[str, list[Trajectory]] = {t: [] for t in task_ids}
    for traj in trajectories:
        by_task.setdefault(traj.task_id, []).append(traj)
    rows = [task_result(t, trajs) for t, trajs in by_task.items()]
    means, covered = {}, {}
    for k in range(1, samples + 1):
        values = [r.pass_at[k] for r in rows if k in r.pass_at]
        covered[k] = len(values)
        means[k] = sum(values) / len(values) if values else 0.0
    every = [t for trajs in by_task.values() for t in trajs]
    outcomes = Counter({o: 0 for o in OUTCOMES})
    outcomes.update(t.outcome or "unknown" for t in every)
    return EvalSummary(
        env_id=env_id, agent=agent, samples=samples, tasks=rows, pass_at_k=means,
        pass_at_k_tasks=covered, outcomes=dict(outcomes), episodes=len(every),
        tokens=_tokens(every), timing=_timing(every), complete=complete, extra=extra or {},
    )


def _tokens(trajectories: Sequence[Trajectory]) -> dict[str, float]:
    """Sampled tokens, counted where the backend reported ids (HTTP endpoints may not)."""
    known = [t for t in trajectories if t.turns and all(u.action_ids is not None for u in t.turns)]
    total = sum(t.num_action_tokens for t in known)
    return {
        "action_tokens": total,
        "episodes_with_ids": len(known),
        "mean_action_tokens": total / len(known) if known else 0.0,
    }


def _timing(trajectories: Sequence[Trajectory]) -> dict[str, float]:
    """Episode time split into the model's share and the environment's (sandbox, verifier)."""
    n = len(trajectories)
    total = {key: sum(t.timings.get(key, 0.0) for t in trajectories)
             for key in ("wall_s", "model_s", "env_s")}
    return {
        "episode_s_total": total["wall_s"],
        "episode_s_mean": total["wall_s"] / n if n else 0.0,
        "model_s_total": total["model_s"],
        "env_s_total": total["env_s"],
    }


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a success rate (95 % by default).

    Unlike the normal approximation it stays inside [0, 1] and is sensible at
    0 or n successes, which small evaluations hit often.

    Example:
        >>> tuple(round(x, 3) for x in wilson_interval(8, 10))
        (0.49, 0.943)
    """
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
