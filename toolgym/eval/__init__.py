"""Evaluation: run an agent on an env's tasks, pass@k, and a self-contained HTML report.

- :func:`evaluate` (``eval/run.py``) runs the episodes through a
  :class:`~toolgym.rollout.RolloutManager`, appends each trajectory to
  ``trajectories.jsonl`` as it ends (so a re-run resumes), then writes
  ``summary.json`` and ``report.html``;
- :func:`pass_at_k` and :func:`summarize` (``eval/metrics.py``) turn
  trajectories into numbers, ``infra_error`` episodes counted apart;
- :func:`render_report` / :func:`write_report` (``eval/report.py``) build the page.
"""

from toolgym.eval.metrics import EvalSummary, TaskResult, pass_at_k, summarize
from toolgym.eval.report import render_report, write_report
from toolgym.eval.run import evaluate, list_task_ids, load_trajectories, write_outputs

__all__ = [
    "EvalSummary",
    "TaskResult",
    "evaluate",
    "list_task_ids",
    "load_trajectories",
    "pass_at_k",
    "render_report",
    "summarize",
    "write_outputs",
    "write_report",
]
