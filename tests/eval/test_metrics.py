"""pass@k against values worked out by hand, and the summary's treatment of infra errors."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from toolgym.eval.metrics import pass_at_k, summarize, task_result
from toolgym.rollout.trajectory import Trajectory, Turn


def test_pass_at_k_hand_computed() -> None:
    # n=5 samples, c=2 successes.
    assert pass_at_k(5, 2, 1) == 0.4  # c / n
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2) = 0.7
    assert pass_at_k(5, 2, 4) == 1.0  # any 4 of 5 include a success
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(1, 1, 1) == 1.0 and pass_at_k(1, 0, 1) == 0.0


def test_pass_at_3_of_5_with_two_successes_is_nine_tenths() -> None:
    # C(3,3) / C(5,3) = 1/10: only the draw of the three failures misses.
    assert pass_at_k(5, 2, 3) == pytest.approx(0.9)


def test_pass_at_k_matches_exhaustive_enumeration() -> None:
    """The fraction of all k-subsets of the samples that hold a success."""
    for n, c in [(4, 1), (6, 2), (7, 3), (8, 5)]:
        outcomes = [1] * c + [0] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(range(n), k))
            hit = sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)
            assert pass_at_k(n, c, k) == pytest.approx(hit, abs=1e-12), (n, c, k)


def test_pass_at_k_is_stable_for_large_n() -> None:
    # C(2000, 1000) is far beyond a float; the exact-integer form still gives the answer.
    exact = 1 - math.comb(1997, 1000) / math.comb(2000, 1000)
    assert pass_at_k(2000, 3, 1000) == pytest.approx(exact, rel=1e-12)
    assert 0.0 < pass_at_k(10_000, 1, 1) == pytest.approx(1e-4)


@pytest.mark.parametrize(("n", "c", "k"), [(5, 2, 0), (5, 2, 6), (5, 6, 1), (5, -1, 1)])
def test_pass_at_k_rejects_impossible_arguments(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def traj(task: str, outcome: str, turns: int = 1, ids: bool = True,
         wall: float = 1.0) -> Trajectory:
    return Trajectory(
        env_id="e", task_id=task, outcome=outcome, final_reward=float(outcome == "success"),
        turns=[Turn(f"t{i}", [1, 2, 3] if ids else None) for i in range(turns)],
        timings={"wall_s": wall, "model_s": wall / 2, "env_s": wall / 4})


def test_task_result_leaves_infra_errors_out_of_n() -> None:
    r = task_result("a", [traj("a", "success", 2), traj("a", "failure", 4),
                          traj("a", "infra_error", 0), traj("a", "infra_error", 0)])
    assert (r.samples, r.successes, r.infra_errors) == (2, 1, 2)
    assert r.pass_at == {1: 0.5, 2: 1.0}  # n=2, not 4: the infra errors are not failures
    assert r.mean_turns == 3.0 and r.mean_reward == 0.5
    assert r.outcomes == {"success": 1, "failure": 1, "infra_error": 2}


def test_summary_means_and_coverage() -> None:
    trajs = ([traj("a", "success"), traj("a", "failure")]  # pass@1 .5, pass@2 1
             + [traj("b", "failure"), traj("b", "failure")]  # 0, 0
             + [traj("c", "success"), traj("c", "infra_error", 0, ids=False)])  # n=1: pass@1 only
    s = summarize("e", "agent", 2, ["a", "b", "c", "d"], trajs)
    assert [r.task_id for r in s.tasks] == ["a", "b", "c", "d"]  # "d" has no trajectories yet
    assert s.pass_at_k[1] == pytest.approx((0.5 + 0 + 1) / 3)
    assert s.pass_at_k[2] == pytest.approx((1 + 0) / 2)
    assert s.pass_at_k_tasks == {1: 3, 2: 2}
    assert s.outcomes["infra_error"] == s.infra_errors == 1
    assert s.outcomes["success"] == 2 and s.outcomes["failure"] == 3 and s.episodes == 6
    assert s.tokens["action_tokens"] == 15 and s.tokens["episodes_with_ids"] == 5
    assert s.timing["episode_s_total"] == 6.0
    data = s.to_json()
    assert data["pass_at_k"]["1"] == s.pass_at_k[1] and data["infra_errors"] == 1
    assert data["tasks"][3]["pass_at"] == {} and data["tasks"][3]["mean_turns"] is None


def test_summary_of_a_random_run_agrees_with_c_over_n() -> None:
    rng = random.Random(0)
    trajs = [traj(f"t{i}", rng.choice(["success", "failure"])) for i in range(20) for _ in range(8)]
    s = summarize("e", "a", 8, [f"t{i}" for i in range(20)], trajs)
    assert s.pass_at_k[1] == pytest.approx(s.outcomes["success"] / 160)
    assert all(s.pass_at_k[k] <= s.pass_at_k[k + 1] for k in range(1, 8))


def test_wilson_interval_against_hand_computed_values():
    from toolgym.eval.metrics import wilson_interval

    # p=0.5, n=100: centre 0.5, half = 1.96*sqrt(.0025 + 1.96²/40000)/(1+1.96²/100) = 0.0961
    low, high = wilson_interval(50, 100)
    assert abs(low - 0.4038) < 1e-3 and abs(high - 0.5962) < 1e-3
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
