"""The code environments end to end, on real Docker sandboxes."""

from __future__ import annotations

import asyncio

import gymnasium
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import toolgym.envs  # noqa: F401 - registers the envs
from tests.sandbox.conftest import IMAGE
from toolgym.envs import Outcome, episode_outcome, make_async
from toolgym.envs.code.env import CodeEnv, CodeRetryEnv
from toolgym.envs.code.tasks import humaneval_tasks, wrong_solution
from toolgym.errors import UnknownEnv
from toolgym.sandbox.docker import SandboxSpec

pytestmark = pytest.mark.docker
SPEC = SandboxSpec(image=IMAGE)


def submit(program: str) -> str:
    return f"Done.\n```python\n{program}\n```"


async def _score_all(pool, programs: dict[str, str]) -> dict[str, float]:
    """Submit each program to its HumanEval task, 8 episodes at a time on one pool."""
    rewards: dict[str, float] = {}
    queue = list(programs.items())

    async def worker() -> None:
        env = CodeEnv("humaneval", provider=pool)
        try:
            while queue:
                task_id, program = queue.pop()
                await env.areset(options={"task_id": task_id})
                _, reward, terminated, _, info = await env.astep(submit(program))
                assert terminated and info["outcome"] in (Outcome.SUCCESS, Outcome.FAILURE), info
                rewards[task_id] = reward
        finally:
            await env.aclose()

    await asyncio.gather(*(worker() for _ in range(8)))
    return rewards


async def test_all_164_canonical_humaneval_solutions_score_one(pool):
    tasks = humaneval_tasks()
    rewards = await _score_all(pool, {t.id: t.data["reference_program"] for t in tasks})
    assert len(rewards) == 164
    assert [k for k, r in rewards.items() if r != 1.0] == []


async def test_corrupted_solutions_score_zero_on_every_problem(pool):
    tasks = humaneval_tasks()
    rewards = await _score_all(pool, {t.id: wrong_solution(t) for t in tasks})
    assert len(rewards) == 164
    assert [k for k, r in rewards.items() if r != 0.0] == []


def test_gymnasium_make_episode_with_a_tool_call():
    env = gymnasium.make("toolgym/HumanEval-v0", sandbox=SPEC)
    try:
        obs, info = env.reset(options={"task_id": "HumanEval/0"})
        assert "has_close_elements" in obs and info["task_id"] == "HumanEval/0"
        tool_names = {t["function"]["name"] for t in info["tools"]}
        assert tool_names == {"python", "bash", "read_file", "write_file"}
        obs, reward, terminated, truncated, info = env.step(
            '<tool_call>{"name": "python", "arguments": {"code": "x = 6 * 7"}}</tool_call>')
        obs, reward, terminated, truncated, info = env.step(
            '<tool_call>{"name": "python", "arguments": {"code": "print(x)"}}</tool_call>')
        assert obs.strip() == "42" and not terminated and not truncated and reward == 0.0
        assert info["new_messages"][0]["role"] == "tool" and info["tool_counts"] == {"ok": 2}
    finally:
        env.close()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.one_of(
    st.text(max_size=60).map(lambda t: "<tool_call>" + t),
    st.text(max_size=60).map(
        lambda t: '<tool_call>{"name": "python", "arguments": ' + t + "</tool_call>"),
    st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=3).map(
        lambda d: ('<tool_call>{"name": "python", "arguments": '
                   + __import__("json").dumps(d) + "}</tool_call>")),
    st.sampled_from(['<tool_call>{"name": "rm", "arguments": {}}</tool_call>',
                     '<tool_call>{"name": "python", "arguments": {"code": 5}}</tool_call>',
                     '<tool_call>["python"]</tool_call>', "</tool_call>"]),
))
def test_malformed_tool_calls_always_become_observations(fuzz_env, junk):
    obs, reward, terminated, truncated, info = fuzz_env.step(junk)
    assert isinstance(obs, str) and obs
    assert not terminated and not truncated and reward == 0.0
    assert info["outcome"] is None


@pytest.fixture(scope="module")
def fuzz_env():
    env = gymnasium.make("toolgym/HumanEval-v0", sandbox=SPEC, max_episode_steps=-1)
    env.reset(options={"task_id": "HumanEval/1"})
    yield env
    env.close()


async def test_close_returns_the_sandbox_to_the_pool(pool):
    env = CodeEnv("humaneval", provider=pool)
    await env.areset(seed=3)
    assert pool.in_use == 1
    await env.aclose()
    await env.aclose()
    assert pool.in_use == 0 and pool.idle >= 1


async def test_dead_sandbox_is_an_infra_error_not_a_zero():
    env = CodeEnv("humaneval", sandbox=SPEC)
    try:
        await env.areset(options={"task_id": "HumanEval/2"})
        await asyncio.to_thread(env.sandbox.container.kill)
        _, reward, terminated, truncated, info = await env.astep(
            '<tool_call>{"name": "bash", "arguments": {"command": "ls"}}</tool_call>')
        assert (terminated, truncated, info["outcome"]) == (False, True, Outcome.INFRA_ERROR)
        assert "sandbox" in info["error"]
        obs, _ = await env.areset(options={"task_id": "HumanEval/2"})  # a fresh sandbox
        assert (await env.sandbox.aexec("echo ok")).stdout == "ok\n"
    finally:
        await env.aclose()


async def test_crashing_verifier_is_an_infra_error():
    class Crashing:
        async def score(self, sandbox, task, answer):
            raise ValueError("verifier bug")

    env = CodeEnv("humaneval", sandbox=SPEC)
    env.verifier = Crashing()
    try:
        await env.areset(seed=0)
        _, reward, terminated, truncated, info = await env.astep("my answer")
        assert info["outcome"] == Outcome.INFRA_ERROR and truncated and not terminated
        assert "verifier bug" in info["error"]
    finally:
        await env.aclose()


async def test_code_retry_shows_failures_then_accepts_a_fix():
    env = CodeRetryEnv("humaneval", max_attempts=3, sandbox=SPEC)
    task = humaneval_tasks().get("HumanEval/4")
    try:
        await env.areset(options={"task_id": task.id})
        obs, reward, terminated, _, info = await env.astep(submit(wrong_solution(task)))
        assert not terminated and reward == 0.0 and "attempt 1 of 3" in obs
        assert "AssertionError" in obs or "assert" in obs
        _, reward, terminated, _, info = await env.astep(submit(task.data["reference_program"]))
        assert terminated and reward == 1.0 and info["outcome"] == Outcome.SUCCESS
    finally:
        await env.aclose()


async def test_turn_budget_truncates_in_both_paths():
    env = make_async("toolgym/HumanEval-v0", max_turns=2, sandbox=SPEC)
    call = '<tool_call>{"name": "bash", "arguments": {"command": "true"}}</tool_call>'
    try:
        await env.areset(seed=0)
        assert (await env.astep(call))[3] is False
        _, _, terminated, truncated, info = await env.astep(call)
        assert (terminated, truncated, info["outcome"]) == (False, True, Outcome.TRUNCATED)
    finally:
        await env.aclose()
    sync = gymnasium.make("toolgym/HumanEval-v0", max_episode_steps=1, sandbox=SPEC)
    try:
        sync.reset(seed=0)
        _, _, terminated, truncated, info = sync.step(call)
        assert truncated and episode_outcome(terminated, truncated, info) is Outcome.TRUNCATED
    finally:
        sync.close()


def test_unknown_env_id_suggests_the_right_one():
    with pytest.raises(UnknownEnv, match="Did you mean 'toolgym/HumanEval-v0'"):
        toolgym.envs.make("toolgym/HumanEvl-v0")


async def test_a_large_legitimate_answer_still_scores_one(pool):
    """The program reaches the harness on stdin, so no argv limit cuts it: a correct
    answer padded to 1 MiB (far past the 128 KiB one-argument limit) scores 1."""
    task = humaneval_tasks().get("HumanEval/0")
    padding = ("# " + "x" * 97 + "\n") * ((1 << 20) // 100)
    rewards = await _score_all(pool, {task.id: task.data["reference_program"] + "\n" + padding})
    assert rewards == {task.id: 1.0}
