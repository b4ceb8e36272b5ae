"""``evaluate`` end to end: real HumanEval episodes in Docker sandboxes, resume and interruption.

The infra-error tests run on ``LatencyEnv``, the stand-in env beneath the
rollout manager (no sandbox): it is about how evaluation counts dropped episodes, not about Docker.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

import toolgym.envs  # noqa: F401 - registers the envs
from toolgym.agents.base import AgentBase, AgentTurn, Conversation
from toolgym.envs.latency import LatencyEnv  # registers toolgym-test/Latency-v0
from toolgym.errors import ConfigError
from toolgym.eval import evaluate
from toolgym.eval.run import REPORT, SUMMARY, TRAJECTORIES
from toolgym.rollout.reference import ReferenceAgent
from toolgym.rollout.trajectory import Trajectory

ENV = "toolgym/HumanEval-v0"
TASKS = [f"HumanEval/{i}" for i in range(4)]
STUB = "toolgym-test/Latency-v0"
ONE_TURN = {"turns": 1}
docker = pytest.mark.docker


@pytest.fixture
async def oracle():
    agent = ReferenceAgent(ENV, "oracle")
    yield agent
    await agent.aclose()


def lines(out: Path) -> list[Trajectory]:
    """Every line of the trajectories file, each parsed strictly (no torn lines allowed)."""
    text = (out / TRAJECTORIES).read_text()
    assert text == "" or text.endswith("\n")
    return [Trajectory.from_json(line) for line in text.splitlines()]


@docker
async def test_oracle_scores_pass_at_k_one(tmp_path: Path, oracle: ReferenceAgent) -> None:
    s = await evaluate(ENV, oracle, samples=2, concurrency=4, out_dir=tmp_path, task_ids=TASKS,
                       agent_name="oracle")
    assert s.pass_at_k == {1: 1.0, 2: 1.0} and s.pass_at_k_tasks == {1: 4, 2: 4}
    assert s.outcomes["success"] == 8 and s.infra_errors == 0 and s.complete
    trajs = lines(tmp_path)
    assert sorted((t.task_id, t.info["sample"]) for t in trajs) == [
        (t, k) for t in TASKS for k in range(2)]
    assert all(t.outcome == "success" and t.final_reward == 1.0 for t in trajs)
    summary = json.loads((tmp_path / SUMMARY).read_text())
    assert summary["pass_at_k"] == {"1": 1.0, "2": 1.0} and summary["agent"] == "oracle"
    assert [r["task_id"] for r in summary["tasks"]] == TASKS
    assert (tmp_path / REPORT).read_text().startswith("<!DOCTYPE html>")


@docker
async def test_wrong_agent_scores_zero(tmp_path: Path) -> None:
    agent = ReferenceAgent(ENV, "wrong")
    try:
        s = await evaluate(ENV, agent, samples=1, concurrency=4, out_dir=tmp_path, task_ids=TASKS)
    finally:
        await agent.aclose()
    assert s.pass_at_k == {1: 0.0} and s.outcomes["failure"] == 4 and s.infra_errors == 0


@docker
async def test_rerun_skips_finished_pairs(tmp_path: Path, oracle: ReferenceAgent) -> None:
    first = await evaluate(ENV, oracle, samples=2, concurrency=4, out_dir=tmp_path,
                           task_ids=TASKS[:3])
    before = (tmp_path / TRAJECTORIES).read_bytes()
    start = time.perf_counter()
    again = await evaluate(ENV, oracle, samples=2, concurrency=4, out_dir=tmp_path,
                           task_ids=TASKS[:3])
    assert time.perf_counter() - start < 1.0  # no episode, not even a sandbox pool
    assert (tmp_path / TRAJECTORIES).read_bytes() == before
    assert again.pass_at_k == first.pass_at_k and again.extra["run_episodes"] == 0
    # More samples and one more task: only the new pairs run.
    more = await evaluate(ENV, oracle, samples=3, concurrency=4, out_dir=tmp_path, task_ids=TASKS)
    assert more.extra["run_episodes"] == 3 + 3 and len(lines(tmp_path)) == 6 + 6
    assert more.pass_at_k == {1: 1.0, 2: 1.0, 3: 1.0} and more.complete


@docker
async def test_interrupted_run_leaves_valid_jsonl_and_resumes(tmp_path: Path,
                                                              oracle: ReferenceAgent) -> None:
    two_done = asyncio.Event()

    def progress(done: int, total: int, traj: Trajectory) -> None:
        if done >= 2:
            two_done.set()

    run = asyncio.ensure_future(evaluate(ENV, oracle, samples=2, concurrency=1, out_dir=tmp_path,
                                         task_ids=TASKS, progress=progress))
    await asyncio.wait_for(two_done.wait(), 60)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    kept = lines(tmp_path)
    assert 2 <= len(kept) < 8
    summary = json.loads((tmp_path / SUMMARY).read_text())  # written on cancellation too
    assert summary["complete"] is False and summary["episodes"] == len(kept)
    # A killed writer may also leave a torn last line: resuming cuts it off.
    with open(tmp_path / TRAJECTORIES, "a") as f:
        f.write('{"env_id": "toolgym/HumanEval-v0", "task_id": "Huma')
    s = await evaluate(ENV, oracle, samples=2, concurrency=4, out_dir=tmp_path, task_ids=TASKS)
    done = lines(tmp_path)
    assert len(done) == 8 and len({(t.task_id, t.info["sample"]) for t in done}) == 8
    assert s.complete and s.pass_at_k[1] == 1.0 and s.extra["run_episodes"] == 8 - len(kept)


@docker
async def test_out_dir_of_another_evaluation_is_refused(tmp_path: Path,
                                                        oracle: ReferenceAgent) -> None:
    await evaluate(ENV, oracle, samples=1, concurrency=2, out_dir=tmp_path, task_ids=TASKS[:1],
                   agent_name="oracle")
    with pytest.raises(ConfigError, match="another evaluation"):
        await evaluate(ENV, oracle, samples=1, concurrency=2, out_dir=tmp_path,
                       task_ids=TASKS[:1], agent_name="someone-else")


class GoodAgent(AgentBase):
    """Answers what the stub env rewards."""

    async def act(self, conversation: Conversation) -> AgentTurn:
        return AgentTurn("good")


async def test_infra_errors_are_counted_apart_and_retried_on_rerun(tmp_path: Path) -> None:
    LatencyEnv.failures_left = 3  # the first attempt and both manager retries hit infra errors
    try:
        s = await evaluate(STUB, GoodAgent(), samples=1, concurrency=1,
                           out_dir=tmp_path, task_ids=["t0"], env_kwargs=ONE_TURN)
    finally:
        LatencyEnv.failures_left = 0
    assert s.infra_errors == 1 and s.outcomes["failure"] == 0
    assert s.tasks[0].samples == 0 and s.pass_at_k_tasks[1] == 0  # not scored 0: not scored
    (stub,) = lines(tmp_path)
    assert stub.outcome == "infra_error" and "dropped" in stub.info["error"]
    s = await evaluate(STUB, GoodAgent(), samples=1, concurrency=1,
                       out_dir=tmp_path, task_ids=["t0"], env_kwargs=ONE_TURN)
    assert s.pass_at_k == {1: 1.0} and s.infra_errors == 0 and len(lines(tmp_path)) == 2


async def test_unknown_task_and_bad_counts_fail_before_anything_runs(tmp_path: Path) -> None:
    from toolgym.envs.tasks import UnknownTask

    with pytest.raises(UnknownTask, match="Did you mean"):
        await evaluate(STUB, GoodAgent(), samples=1, concurrency=1,
                       out_dir=tmp_path / "x", task_ids=["t10"])
    with pytest.raises(ConfigError):
        await evaluate(STUB, GoodAgent(), samples=0, concurrency=1,
                       out_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()


async def test_resume_past_a_corrupt_middle_line_keeps_every_good_record(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A corrupt line in the middle of trajectories.jsonl made the resume exit with a traceback."""
    s = await evaluate(STUB, GoodAgent(), samples=2, concurrency=2, out_dir=tmp_path,
                       task_ids=["t0", "t1"], env_kwargs=ONE_TURN)
    assert s.complete
    path = tmp_path / TRAJECTORIES
    first, *rest = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(first + b"\x00\x00garbage{\n" + b"".join(rest[:-1]))  # the last one lost
    s = await evaluate(STUB, GoodAgent(), samples=2, concurrency=2, out_dir=tmp_path,
                       task_ids=["t0", "t1", "t2"], env_kwargs=ONE_TURN)
    assert s.complete and s.pass_at_k[1] == 1.0
    assert s.extra["run_episodes"] == 1 + 2  # the lost pair and the new task, nothing more
    assert "trajectories.jsonl:2: skipping an unreadable line" in caplog.text


async def test_a_platform_that_keeps_failing_stops_the_evaluation(tmp_path: Path) -> None:
    """With every episode an infra error, evaluate went through all of them and 'succeeded'."""
    from toolgym.errors import InfrastructureFailing

    LatencyEnv.failures_left = 10**6
    try:
        with pytest.raises(InfrastructureFailing, match="Docker daemon running"):
            await evaluate(STUB, GoodAgent(), samples=4, concurrency=2, out_dir=tmp_path,
                           task_ids=[f"t{i}" for i in range(8)], env_kwargs=ONE_TURN)
    finally:
        LatencyEnv.failures_left = 0
    summary = json.loads((tmp_path / SUMMARY).read_text())  # written on the way out
    assert summary["complete"] is False and summary["episodes"] < 32



async def test_a_slow_platform_does_not_stop_the_evaluation(tmp_path: Path) -> None:
    """Under load, 40 browser starts in a row ran out of time (past the 32 of the streak
    meant for a dead daemon) and the evaluation stopped; now it runs every episode."""
    LatencyEnv.slow_resets_left = 40
    try:
        s = await evaluate(STUB, GoodAgent(), samples=4, concurrency=2, out_dir=tmp_path,
                           task_ids=[f"t{i}" for i in range(8)], env_kwargs=ONE_TURN)
    finally:
        LatencyEnv.slow_resets_left = 0
    assert s.complete
    assert s.extra["rollout_stats"]["infra_slow"] == 40
    assert sum(t.successes for t in s.tasks) > 0
