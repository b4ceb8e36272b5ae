"""The main job's own checks: it refuses a run with nothing to learn from, claims
RL helped only when the intervals say so, and its whole pipeline runs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.examples import load_example


def test_the_learning_check_refuses_a_run_without_mixed_groups() -> None:
    demo = load_example("calculator_demo")
    assert demo.check_learnable([{"groups_mixed": 0.0}] * 3) is not None
    assert demo.check_learnable([{"groups_mixed": 0.0}, {"groups_mixed": 0.25}]) is None
    assert demo.verdict((20, 200), (90, 200))[0]
    assert not demo.verdict((20, 200), (28, 200))[0]  # overlapping intervals: no claim
    assert not demo.verdict((90, 200), (20, 200))[0]


@pytest.mark.docker
def test_a_shortened_demo_runs_end_to_end_and_its_first_groups_are_mixed(tmp_path: Path) -> None:
    """The demo's own code path, shrunk: 32 train tasks (SFT nearly memorises them, so
    GRPO's rollouts succeed part of the time), 2 GRPO steps, tiny evaluations. GRPO
    learns only from groups holding both a success and a failure; a warm start that
    never (or always) succeeds is what broke the main job before (issue 12)."""
    demo = load_example("calculator_demo")
    rc = demo.main(["--run-dir", str(tmp_path), "--train-tasks", "32", "--sft-steps", "80",
                    "--grpo-steps", "2", "--eval-tasks", "8", "--sampled-tasks", "4",
                    "--eval-samples", "2", "--threads", "1"])
    run = tmp_path / "seed0"
    steps = [json.loads(line) for line in (run / "grpo" / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in steps if "groups_mixed" in m]
    assert len(steps) == 2
    assert any(m["groups_mixed"] > 0 for m in steps), steps
    assert 0 < steps[0]["success_rate"] < 1
    assert rc in (0, 1)  # 8 held-out tasks decide nothing; the run must complete
    assert (run / "grpo" / "final").is_dir() and (run / "eval_grpo" / "sampled").is_dir()
