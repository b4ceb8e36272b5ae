"""``toolgym/KeyChain-v0``: task structure, reward semantics, oracle / wrong agents, check_env."""

from __future__ import annotations

import random

import gymnasium
import pytest

from toolgym.envs import make_async
from toolgym.envs.base import ToolEnv
from toolgym.envs.checker import check_env
from toolgym.envs.keychain import (
    KEYS,
    chain_actions,
    demonstration,
    keychain_tasks,
    oracle_actions,
    simulate,
    wrong_actions,
)
from toolgym.envs.keychain.demos import call
from toolgym.envs.keychain.env import KeyChainEnv
from toolgym.envs.keychain.tool import GetTool
from toolgym.envs.keychain.verifier import DigitVerifier
from toolgym.envs.outcome import Outcome
from toolgym.errors import ConfigError, ToolgymError
from toolgym.tools import BashTool, ToolSet

ENV_ID = "toolgym/KeyChain-v0"


async def play(env, task_id: str, actions: list[str]):
    obs, info = await env.areset(options={"task_id": task_id})
    steps = [(obs, 0.0, False, False, info)]
    for action in actions:
        steps.append(await env.astep(action))
        if steps[-1][2] or steps[-1][3]:
            break
    return steps


def test_tasks_are_chains_with_misleading_distractors():
    source = keychain_tasks(n_train=300, n_test=100)
    assert len(source.split("train")) == 300 and len(source.split("test")) == 100
    for task in source:
        table, answer = task.data["table"], task.data["answer"]
        keys = chain_actions(task)
        assert set(table) == set(KEYS) and len(set(keys)) == len(keys) == 3
        assert table[keys[-1]] == answer and keys[0] == task.data["start"]
        assert task.prompt == f"start: {keys[0]}" and answer not in task.prompt
        # a distractor never shows the answer directly
        assert all(table[k] != answer for k in KEYS if k not in keys)
    assert list(keychain_tasks(n_train=300, n_test=100)) == list(source)
    assert [t.data for t in keychain_tasks(seed=1, n_train=20, n_test=0)] != [
        t.data for t in list(source)[:20]]
    with pytest.raises(ConfigError, match="depth"):
        keychain_tasks(depth=0)


async def test_oracle_succeeds_in_both_call_formats_and_wrong_fails():
    env = KeyChainEnv(split="test")
    for task_id in env.tasks.ids()[:50]:
        task = env.tasks.get(task_id)
        hermes = [call(k, hermes=True) for k in chain_actions(task)] + [task.data["answer"]]
        for actions in (oracle_actions(task), hermes):
            *_, (obs, reward, terminated, truncated, info) = await play(env, task_id, actions)
            assert (reward, terminated, truncated, info["outcome"]) == (1.0, True, False,
                                                                          Outcome.SUCCESS)
            assert info["messages"] == simulate(task, actions)
        *_, (_, reward, terminated, _, info) = await play(env, task_id, wrong_actions(task))
        assert (reward, terminated, info["outcome"]) == (0.0, True, Outcome.FAILURE)


async def test_a_wrong_key_early_spoils_a_correct_rest():
    env = KeyChainEnv(split="train")
    task = env.tasks.get(env.tasks.ids()[0])
    keys, table = chain_actions(task), task.data["table"]
    wrong = next(k for k in KEYS if k not in keys)
    steps = await play(env, task.id, [call(wrong)])
    assert steps[1][0] == f"{wrong} -> {table[wrong]}"  # looks like progress
    # follow the distractor as faithfully as the oracle follows the chain
    key, actions = table[wrong], [call(wrong)]
    while not key.isdigit() and len(actions) < 4:
        actions.append(call(key))
        key = table[key]
    actions.append(key if key.isdigit() else "0")
    *_, (_, reward, *_rest) = await play(env, task.id, actions)
    assert reward == (1.0 if key == task.data["answer"] else 0.0)


async def test_mistakes_are_observations_and_the_budget_truncates():
    env = make_async(ENV_ID)
    task = env.unwrapped.tasks.get(env.unwrapped.tasks.ids()[0])
    steps = await play(env, task.id, ["get z", '<tool_call>{"name": "put"}</tool_call>'])
    assert "no key 'z'" in steps[1][0] and "put" in steps[2][0]
    assert [s[1:4] for s in steps[1:]] == [(0.0, False, False)] * 2
    assert steps[2][4]["tool_counts"] == {"tool_error": 1, "unknown_tool": 1}
    steps = await play(env, task.id, [call(task.data["start"])] * 5)
    obs, reward, terminated, truncated, info = steps[-1]
    assert len(steps) == 6 and (reward, terminated, truncated) == (0.0, False, True)
    assert info["outcome"] == Outcome.TRUNCATED
    await play(env, task.id, ["1"])
    with pytest.raises(ToolgymError, match="reset"):  # the answer ended the episode
        await env.astep("1")


@pytest.mark.parametrize("answer, reward", [("7", 1.0), ("it is 7", 1.0), ("3 then 7", 1.0),
                                            ("7 or 3", 0.0), ("", 0.0), ("0123456789", 0.0),
                                            ("77", 0.0)])
async def test_the_last_number_is_the_answer(answer, reward):
    env = KeyChainEnv()
    task = next(t for t in env.tasks if t.data["answer"] == "7")
    *_, (_, got, terminated, _, _) = await play(env, task.id, [answer])
    assert (got, terminated) == (reward, True)


def test_imperfect_demonstrations_mix_outcomes_and_match_the_env():
    tasks = list(keychain_tasks(n_train=400, n_test=0))
    rng = random.Random(0)
    demos = [demonstration(t, rng) for t in tasks]
    assert 0.55 < sum(d.correct for d in demos) / len(demos) < 0.8
    assert all(len([m for m in d.messages if m["role"] == "assistant"]) <= 5 for d in demos)
    perfect = [demonstration(t, rng, p_wrong_key=0, p_miscopy=0) for t in tasks[:50]]
    assert all(d.correct and d.messages == simulate(t, oracle_actions(t))
               for d, t in zip(perfect, tasks, strict=False))


def test_gymnasium_make_sync_episode():
    env = gymnasium.make(ENV_ID)
    obs, info = env.reset(seed=3)
    task = env.unwrapped.tasks.get(info["task_id"])
    assert task.split == "train" and obs == task.prompt
    for action in oracle_actions(task):
        obs, reward, terminated, truncated, info = env.step(action)
    assert (reward, terminated, truncated) == (1.0, True, False)
    env.close()
    env.close()


async def test_keychain_passes_check_env():
    report = await check_env(ENV_ID, n_tasks=10)
    failed = [f"{r.name}: {r.detail}" for r in report.results if not r.ok]
    assert failed == [] and len(report.results) == 8


class _HackableKeyChain(KeyChainEnv):
    """A KeyChain whose one "probe" is the oracle itself: a reward the checker must flag."""

    def hack_probes(self, task):
        return {**super().hack_probes(task), "play the oracle": self.reference_actions(task)}


class _UnsolvableKeyChain(KeyChainEnv):
    """A KeyChain whose oracle plays the wrong script: the checker must flag the oracle."""

    def reference_actions(self, task, kind="oracle"):
        return wrong_actions(task)


@pytest.mark.parametrize(("cls", "check"), [(_HackableKeyChain, "reward-hack probes score 0"),
                                            (_UnsolvableKeyChain, "oracle ≥ 95 %, wrong agent 0")])
async def test_check_env_flags_a_forgeable_reward_and_a_failing_oracle(cls, check):
    env_id = f"tests/{cls.__name__.strip('_')}-v0"
    gymnasium.register(env_id, entry_point=cls, max_episode_steps=None)
    try:
        report = await check_env(env_id, n_tasks=5)
    finally:
        gymnasium.registry.pop(env_id)
    failed = {r.name: r.detail for r in report.results if not r.ok}
    assert list(failed) == [check], failed
    assert failed[check].count("tests/") == 0 and failed[check].count(" on ") in (0, 3)


async def test_native_tool_calls_are_answered_with_their_ids_and_the_episode_scores():
    """An OpenAI-style message with ``tool_calls`` (what a served model sends) is read like
    the Hermes text: each call gets its tool message, tagged with the call's id."""
    env = make_async(ENV_ID)
    task = env.unwrapped.tasks.get(env.unwrapped.tasks.ids()[0])
    await env.areset(options={"task_id": task.id})
    for i, key in enumerate(chain_actions(task)[:-1]):
        native = {"role": "assistant", "content": None, "tool_calls": [
            {"id": f"c{i}", "type": "function",
             "function": {"name": "get", "arguments": f'{{"key": "{key}"}}'}}]}
        obs, reward, terminated, _, info = await env.astep(native)
        assert not terminated and "->" in obs, obs
        assert info["new_messages"][0]["tool_call_id"] == f"c{i}"
        assert info["call_form"] == "native"  # trajectories record the form calls came in
    bad = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "x1", "type": "function", "function": {"name": "get", "arguments": "{"}},
        {"id": "x2", "type": "function", "function": {"name": "get", "arguments": "{}"}}]}
    obs, _, terminated, _, info = await env.astep(bad)
    assert not terminated and [m["tool_call_id"] for m in info["new_messages"]] == ["x1", "x2"]
    assert info["call_form"] == "native"
    *_, info = await env.astep(f"get {chain_actions(task)[0]}")
    assert info["call_form"] == "text"
    *_, info = await env.astep({"role": "assistant", "content": task.data["answer"]})
    assert info["outcome"] == Outcome.SUCCESS
    await env.aclose()


async def test_keychain_is_a_plain_tool_env_without_sandboxes():
    """KeyChain-v0 is ToolEnv(sandbox=None): no provider, no sandbox, its tool reads the task
    through the context; a tool that needs a sandbox is refused in such an env up front."""
    env = KeyChainEnv(split="train")
    assert isinstance(env, ToolEnv) and env.provider is None and env.sandbox_spec is None
    _, info = await env.areset(seed=0)
    assert env.sandbox is None and env.context.task is env.task
    obs, *_ = await env.astep(call(env.task.data["start"]))
    assert obs.startswith(f"{env.task.data['start']} -> ")
    await env.aclose()
    with pytest.raises(ConfigError, match=r"holds no sandbox .* tools \['bash'\] need one"):
        ToolEnv(env.tasks, ToolSet([GetTool(), BashTool()]), DigitVerifier(), sandbox=None)
