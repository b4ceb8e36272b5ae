"""``benchmarks/credit_assignment.py``: its summary maths, and a tiny end-to-end run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "credit_assignment.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("credit_assignment", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_steps_to_reach_uses_the_seed_mean_of_smoothed_curves(bench):
    a = bench.Run("m", 0, [10, 20, 30, 40], [0.0, 0.5, 1.0, 1.0], 1.0)
    b = bench.Run("m", 1, [12, 22, 32, 42], [0.0, 0.0, 0.5, 1.0], 1.0)
    assert bench.smooth([0.0, 0.5, 1.0, 1.0], 2) == [0.0, 0.25, 0.75, 1.0]
    # window 1: seed means 0, 0.25, 0.75, 1.0 at mean env steps 11, 21, 31, 41
    assert bench.steps_to_reach([a, b], 0.75, 1) == 31
    assert bench.steps_to_reach([a, b], 1.01, 1) is None
    assert bench.final_success(a, 2) == 1.0 and bench.final_success(b, 2) == 0.75


def test_table_reports_every_method_against_grpos_final(bench):
    grpo = [bench.Run("grpo", s, [10, 20], [0.2, 0.6], 1.0) for s in (0, 1)]
    fast = [bench.Run("gigpo", s, [10, 20], [0.6, 0.8], 2.0) for s in (0, 1)]
    md = bench.table({"grpo": grpo, "gigpo": fast}, window=1)
    assert "GRPO's final 0.600" in md
    assert "| grpo | 0.600 ± 0.000 | 20 | 20 | 1 |" in md
    assert "| gigpo | 0.800 ± 0.000 | 10 | 20 | 2 |" in md


def test_entry_point_runs_end_to_end_on_a_tiny_budget_and_merges_runs(bench, tmp_path: Path):
    tiny = ["--seeds", "0", "1", "--steps", "2", "--groups", "2", "--group-size", "2",
            "--sft-steps", "3", "--demos", "16", "--window", "1", "--depth", "4"]
    bench.main(["--out", str(tmp_path / "a"), "--methods", "grpo", "gigpo", "vine", *tiny])
    bench.main(["--out", str(tmp_path / "b"), "--methods", "archer", *tiny])
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results["budget"]["depth"] == 4
    assert sorted({(r["method"], r["seed"]) for r in results["runs"]}) == [
        (m, s) for m in ("gigpo", "grpo", "vine") for s in (0, 1)]
    assert all(len(r["success"]) == 2 and r["env_steps"][-1] >= 8 for r in results["runs"])
    steps = {r["method"]: r["env_steps"][-1] for r in results["runs"] if r["seed"] == 0}
    assert steps["vine"] > steps["grpo"]  # the continuations are counted as env steps
    assert (tmp_path / "a" / "curves.png").stat().st_size > 5_000
    table = (tmp_path / "a" / "table.md").read_text()
    assert table.count("\n") == 5
    (tmp_path / "a" / "table.md").unlink()
    bench.main(["--out", str(tmp_path / "a"), "--replot"])  # from results.json alone
    assert (tmp_path / "a" / "table.md").read_text() == table
    bench.main(["--out", str(tmp_path / "all"), "--replot", "--merge", str(tmp_path / "a"),
                str(tmp_path / "b")])
    merged = (tmp_path / "all" / "table.md").read_text()
    assert merged.count("\n") == 6 and "| archer |" in merged and "| vine |" in merged
