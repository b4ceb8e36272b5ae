"""DAPO's dynamic sampling: groups whose rewards are all equal are dropped, and refilled."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.trainers.conftest import ReplaySource, grpo_config, synthetic_groups
from toolgym.errors import ConfigError
from toolgym.rollout.trajectory import Trajectory, Turn, read_jsonl
from toolgym.trainers.dynamic_sampling import draw_mixed_groups
from toolgym.trainers.grpo import GRPOTrainer
from toolgym.trainers.metrics import group_is_mixed


def _group(name: str, rewards: list[float]) -> list[Trajectory]:
    return [Trajectory("toy", name, [Turn("a", [5], [-0.1], prompt_ids=[1])], final_reward=r,
                       group_id=name, outcome="success") for r in rewards]


def U(name: str) -> list[Trajectory]:  # noqa: N802 - a uniform group
    return _group(name, [1.0, 1.0])


def M(name: str) -> list[Trajectory]:  # noqa: N802 - a mixed group
    return _group(name, [0.0, 1.0])


def test_a_group_is_mixed_when_its_kept_rewards_differ() -> None:
    assert group_is_mixed(M("a")) and not group_is_mixed(U("a"))
    infra = _group("a", [0.0, 1.0])
    infra[0].outcome = "infra_error"  # dropped by every trainer: it does not make the group mixed
    assert not group_is_mixed(infra)


async def test_uniform_groups_are_dropped_and_counted() -> None:
    source = ReplaySource([[U("a"), M("b"), U("c"), M("d")]])
    kept, drawn, metrics = await draw_mixed_groups(source, 4)
    assert [g[0].task_id for g in kept] == ["b", "d"] and len(drawn) == 4
    assert metrics == {"dynamic_groups_dropped": 2.0, "dynamic_resample_rounds": 0.0}


@pytest.mark.parametrize("rounds,tasks", [(0, ["b"]), (1, ["b", "e", "g"]),
                                          (2, ["b", "e", "g", "h"]), (5, ["b", "e", "g", "h"])])
async def test_resampling_refills_the_step_up_to_the_cap(rounds: int, tasks: list[str]) -> None:
    # each draw asks for the groups still missing: 4, then 3, then 1; 3 + 1 uniform ones dropped
    source = ReplaySource([[U("a"), M("b"), U("c"), U("d")], [M("e"), U("f"), M("g")],
                           [M("h"), M("i")]])
    kept, drawn, metrics = await draw_mixed_groups(source, 4, resample_rounds=rounds)
    assert [g[0].task_id for g in kept] == tasks
    used = min(rounds, 2)  # the third draw fills the step: no more are made
    assert metrics["dynamic_groups_dropped"] == (3.0 if used == 0 else 4.0)
    assert metrics["dynamic_resample_rounds"] == used and source.index == used + 1
    assert len(drawn) == len(kept) + metrics["dynamic_groups_dropped"]


def test_the_trainer_trains_on_mixed_groups_only(tiny_dir: Path, tmp_path: Path) -> None:
    groups = synthetic_groups(tiny_dir, 4, 2, seed=2)
    for g, rewards in zip(groups, ([1.0, 1.0], [0.0, 1.0], [0.0, 0.0], [1.0, 0.0]), strict=True):
        for t, r in zip(g, rewards, strict=True):
            t.final_reward = r
    cfg = grpo_config(tmp_path / "run", tiny_dir, total_steps=1, export_final=False,
                      dynamic_sampling=True, rollout={"group_size": 2})
    history = GRPOTrainer(cfg, source=ReplaySource([groups]), echo=None).train()
    h = history[0]
    assert h["dynamic_groups_dropped"] == 2 and h["groups_mixed"] == 0.5  # of the groups drawn
    assert h["episodes"] == 8 and h["optimizer_steps"] == 1
    trained = {t.task_id for t in read_jsonl(tmp_path / "run" / "trajectories.jsonl")}
    assert trained == {"t1", "t3"}


def test_dynamic_sampling_options_are_checked(tiny_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="goes with dynamic_sampling"):
        grpo_config(tmp_path, tiny_dir, resample_rounds=2)
    with pytest.raises(ConfigError, match="group_size >= 2"):
        grpo_config(tmp_path, tiny_dir, dynamic_sampling=True, advantage_estimator="reinforce_pp",
                    rollout={"group_size": 1})
