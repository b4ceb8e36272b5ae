"""The main job's own checks: it refuses a run with nothing to learn from, and claims
RL helped only when the intervals say so (a shortened end-to-end run is still to do)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DEMO = Path(__file__).parents[1] / "examples" / "calculator_demo.py"


def load_demo():
    spec = importlib.util.spec_from_file_location("calculator_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_learning_check_refuses_a_run_without_mixed_groups() -> None:
    demo = load_demo()
    assert demo.check_learnable([{"groups_mixed": 0.0}] * 3) is not None
    assert demo.check_learnable([{"groups_mixed": 0.0}, {"groups_mixed": 0.25}]) is None
    assert demo.verdict((20, 200), (90, 200))[0]
    assert not demo.verdict((20, 200), (28, 200))[0]  # overlapping intervals: no claim
    assert not demo.verdict((90, 200), (20, 200))[0]
