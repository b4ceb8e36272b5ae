"""The calculator environment: evaluator safety, exact verification, tasks, demos, and
episodes on real Docker sandboxes (``check_env`` included)."""

from __future__ import annotations

import asyncio
import random
import re
import time
from fractions import Fraction

import gymnasium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import toolgym.envs  # noqa: F401 - registers the built-in envs
from tests.sandbox.conftest import IMAGE
from toolgym.envs import Outcome, Task
from toolgym.envs.calc import (
    KINDS,
    ExactAnswerVerifier,
    calc_tasks,
    calc_tool,
    calculate,
    demonstration,
    demonstrations,
    evaluate,
    last_number,
    near_miss,
    oracle_actions,
    parse_number,
    simulate,
    wrong_actions,
)
from toolgym.envs.calc.demos import call
from toolgym.envs.calc.env import CalculatorEnv
from toolgym.envs.calc.evaluator import MAX_DIGITS, CalcError
from toolgym.envs.calc.prompts import SYSTEM_PROMPT
from toolgym.envs.calc.tasks import split_of
from toolgym.envs.checker import check_env
from toolgym.errors import ConfigError
from toolgym.sandbox.docker import DockerSandbox, SandboxSpec
from toolgym.tools import ToolContext

ENV_ID = "toolgym/Calculator-v0"
SPEC = SandboxSpec(image=IMAGE)
MALICIOUS = [
    "__import__('os').system('touch /work/pwned')",
    "().__class__.__base__.__subclasses__()",
    "open('/etc/passwd').read()",
    "exec('1')",
    "eval('2+2')",
    "[1, 2]",
    "lambda: 1",
    "x",
    "1 if 1 else 2",
    "'a' * 3",
    "b'1'",
    "True + 1",
    "2j * 2",
    "1 < 2",
    "7 ^ 2",
    "~5",
    "not 1",
    "1; 2",
    "a := 1",
    "f'{1}'",
    "print(1)",
    "0x10 .real",
]
BOMBS = ["9**9**9**9", "10**999999", "2**10000", "(10**99)**2", "99999999999**99", "1e308*1e308",
         "1e999", "2**-100000", "10**99 * 10**99", "(-7)**1001"]


def task(expression: str, answer: int | None = None) -> Task:
    data = {"expression": expression, **({"answer": answer} if answer is not None else {})}
    return Task("t", f"What is {expression}?", data=data)


async def score(answer: str, expression: str = "347 * 29") -> float:
    return (await ExactAnswerVerifier().score(None, task(expression), answer)).reward


# ------------------------------------------------------------------ evaluator (host)


@pytest.mark.parametrize("expression, value", [
    ("347 * 29", 10063), ("-5 - -3", -2), ("(34 + 29) * (51 - 12)", 2457), ("8463 / 91", 93),
    ("1 / 3", Fraction(1, 3)), ("0.1 + 0.2", Fraction(3, 10)), ("7 // 2", 3), ("-7 // 2", -4),
    ("7 % 3", 1), ("-7 % 3", 2), ("2 ** 10", 1024), ("2 ** -2", Fraction(1, 4)),
    ("1_000 * 3", 3000), ("2.5e3", 2500), ("  +4  ", 4), ("(((((1)))))", 1), ("10**99", 10**99),
])
def test_evaluator_is_exact(expression, value):
    assert evaluate(expression) == value


@pytest.mark.parametrize("expression", MALICIOUS)
def test_evaluator_refuses_anything_but_arithmetic(expression):
    with pytest.raises(CalcError):
        evaluate(expression)
    assert calculate(expression).startswith("Error: ")


@pytest.mark.parametrize("expression", BOMBS)
def test_huge_numbers_are_refused_at_once(expression):
    start = time.perf_counter()
    assert calculate(expression).startswith("Error: ")
    assert time.perf_counter() - start < 0.05


@pytest.mark.parametrize("expression, message", [
    ("1 / 0", "division by zero"), ("5 // 0", "division by zero"), ("5 % 0", "division by zero"),
    ("0 ** -1", "division by zero"), ("(", "invalid expression"), ("", "invalid expression"),
    ("2 ** 0.5", "whole number"), ("1" * 201, "too long"), ("7 ^ 2", "write ** for a power"),
    ("__import__('os')", "found a function call"), ("10**100", f"more than {MAX_DIGITS} digits"),
    ("(" * 100 + "1" + ")" * 100, ""), ("-" * 199 + "1", ""), ("1\x00", "invalid expression"),
])
def test_evaluator_errors_say_why(expression, message):
    out = calculate(expression)
    assert message in out
    assert out.startswith("Error: ") or out in ("1", "-1")


def test_tool_output_format():
    assert [calculate(e) for e in ("347*29", "1/3", "-2/3", "1/8", "-0.00000000001", "6/3")] == [
        "10063", "0.3333333333", "-0.6666666667", "0.125", "0", "2"]


@settings(max_examples=200, deadline=None)
@given(st.integers(-10**6, 10**6), st.sampled_from("+-*"), st.integers(-10**6, 10**6))
def test_evaluator_agrees_with_python_ints(a, op, b):
    assert evaluate(f"{a} {op} ({b})") == eval(f"{a} {op} ({b})")  # noqa: S307 - test oracle


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789+-*/%().e_ jx'", max_size=40))
def test_evaluator_never_raises_anything_but_calc_error(expression):
    try:
        evaluate(expression)
    except CalcError:
        pass


# ------------------------------------------------------------------ verifier


@pytest.mark.parametrize("answer, reward", [
    ("10063", 1.0), ("The answer is 10063.", 1.0), ("10,063", 1.0), ("10063.0", 1.0),
    ("347 * 29 = 10063", 1.0), ("**10063**", 1.0), ("=10063\n", 1.0), ("+10063", 1.0),
    ("10063 (from 347 * 29)", 0.0),     # the last number counts
    ("10062, 10063 or 10064", 0.0), ("10063 or 10064", 0.0), ("-10063", 0.0), ("1.0063e4", 0.0),
    ("10 063", 0.0), ("10,06,3", 0.0), ("10063.5", 0.0), ("ten thousand and sixty-three", 0.0),
    ("", 0.0), ("9" * 5000, 0.0), ("10063" + "0" * 200, 0.0),
])
async def test_verifier_reads_the_last_number(answer, reward):
    assert await score(answer) == reward


@pytest.mark.parametrize("answer, reward", [
    ("-318", 1.0), ("It is -318.", 1.0), ("(-318)", 1.0), ("= -318", 1.0), ("-318.00", 1.0),
    ("318", 0.0), ("29-347 is -318 hmm 2", 0.0), ("x-318", 0.0),
])
async def test_verifier_handles_negative_answers(answer, reward):
    assert await score(answer, "29 - 347") == reward


def test_last_number_rules():
    assert last_number("347-29") == "29"
    assert last_number("v2 is 1,234,567.") == "1,234,567"
    assert last_number("3.14") == "3.14"
    assert last_number("none") is None
    assert parse_number("1,000.50") == Fraction(2001, 2)
    assert parse_number("9" * 200) is None


async def test_verifier_refuses_a_task_whose_stored_answer_is_wrong():
    with pytest.raises(ValueError, match="stored answer"):
        await ExactAnswerVerifier().score(None, task("347 * 29", 10064), "10064")


# ------------------------------------------------------------------ tasks


def test_splits_are_large_disjoint_and_deterministic():
    source = calc_tasks()
    train, test = source.split("train"), source.split("test")
    assert len(train) >= 2000 and len(test) >= 500
    assert not {t.data["expression"] for t in train} & {t.data["expression"] for t in test}
    assert not {t.prompt for t in train} & {t.prompt for t in test}

    def key(t: Task) -> tuple:
        return tuple(sorted(int(n) for n in re.findall(r"\d+", t.prompt))), t.data["answer"]

    assert not {key(t) for t in train} & {key(t) for t in test}  # not even reordered numbers
    assert list(calc_tasks(seed=0)) == list(source)
    assert [t.prompt for t in calc_tasks(seed=1)][:50] != [t.prompt for t in source][:50]
    small = calc_tasks(n_train=100, n_test=30)
    assert list(small.split("train")) == list(train)[:100]
    assert list(small.split("test")) == list(test)[:30]


def test_tasks_are_well_formed():
    source = calc_tasks()
    kinds = {t.metadata["kind"] for t in source}
    assert kinds == set(KINDS)
    for t in source:
        value = evaluate(t.data["expression"])
        numbers = [int(n) for n in re.findall(r"\d+", t.prompt)]
        assert value == t.data["answer"] and value.denominator == 1 and value != 0, t
        assert t.data["answer"] not in numbers, t   # echoing the question never scores
        assert split_of(tuple(numbers), t.data["answer"]) == t.split
        assert len(t.prompt) <= 40, t
    chain = [t for t in source if t.metadata["kind"] == "chain"]
    assert all(len(t.data["steps"]) == 2 for t in chain)


def test_task_mix_is_configurable_and_checked():
    only = calc_tasks(n_train=50, n_test=10, mix={"expr1": 1})
    assert {t.metadata["kind"] for t in only} == {"expr1"}
    with pytest.raises(ConfigError, match="Did you mean 'words'"):
        calc_tasks(mix={"word": 1})
    with pytest.raises(ConfigError):
        calc_tasks(mix={"expr1": 0})


# ------------------------------------------------------------------ demonstrations


def test_oracle_transcripts_score_and_stay_short():
    source = calc_tasks()
    lengths = []
    for t in source:
        messages = simulate(t, oracle_actions(t), system_prompt=None)
        assert last_number(messages[-1]["content"]) == str(t.data["answer"])
        assert [m["role"] for m in messages][-2:] == ["tool", "assistant"]
        lengths.append(sum(len(m["content"]) for m in messages))
    mean = sum(lengths) / len(lengths)
    assert mean < 160 and max(lengths) < 260, (mean, max(lengths))
    assert len(SYSTEM_PROMPT) < 80


def test_wrong_actions_never_score():
    for t in calc_tasks():
        assert last_number(wrong_actions(t)[-1]) != str(t.data["answer"])


def test_imperfect_demonstrations_have_the_asked_mistake_rates():
    train = calc_tasks().split("train")
    demos = demonstrations(train, seed=0, p_guess=0.3, p_mistype=0.1, p_miscopy=0.1)
    modes = ("guess", "mistype", "miscopy")
    share = {m: sum(d.mode == m for d in demos) / len(demos) for m in modes}
    assert abs(share["guess"] - 0.3) < 0.04 and abs(share["miscopy"] - 0.1) < 0.03
    assert all(d.correct == (d.mode == "oracle") for d in demos if d.mode != "mistype")
    assert 0.45 < sum(d.correct for d in demos) / len(demos) < 0.55
    guesses = [d for d in demos if d.mode == "guess"]
    assert all(not any(m["role"] == "tool" for m in d.messages) for d in guesses)
    assert all(d.actions[-1].startswith("About ") for d in guesses)
    assert demos == demonstrations(train, seed=0, p_guess=0.3, p_mistype=0.1, p_miscopy=0.1)
    perfect = demonstrations(list(train)[:100], p_guess=0, p_mistype=0, p_miscopy=0)
    assert all(d.correct and d.actions == oracle_actions(t)
               for d, t in zip(perfect, train, strict=False))
    with pytest.raises(ConfigError):
        demonstration(train.get("calc-train-0000"), random.Random(0), p_guess=0.9, p_miscopy=0.2)


@given(st.integers(-10**9, 10**9).filter(bool), st.integers(0, 2**32))
def test_near_miss_is_always_wrong_and_never_flips_the_sign(value, seed):
    miss = near_miss(value, random.Random(seed))
    assert miss != value and miss * value >= 0


# ------------------------------------------------------------------ in the sandbox


@pytest.fixture(scope="module")
def registered():
    """Register the id for check_env and gymnasium.make, unless envs/__init__.py already does."""
    added = ENV_ID not in gymnasium.registry
    if added:
        gymnasium.register(ENV_ID, entry_point="toolgym.envs.calc.env:CalculatorEnv",
                           max_episode_steps=4)
    yield ENV_ID
    if added:
        gymnasium.registry.pop(ENV_ID, None)


@pytest.fixture
async def sandbox():
    sb = await DockerSandbox.acreate(SPEC)
    yield sb
    await sb.aclose()


@pytest.mark.docker
async def test_calc_tool_in_the_sandbox_refuses_code_and_bombs(sandbox):
    calc = calc_tool(timeout_s=5.0)
    for expression in MALICIOUS + BOMBS:
        start = time.perf_counter()
        result = await calc(ToolContext(sandbox), expression=expression)
        assert result.error and result.text.startswith("Error: "), (expression, result)
        assert result.text == calculate(expression)
        assert time.perf_counter() - start < 3.0
    listing = await sandbox.aexec("ls -A /work /tmp")
    assert "pwned" not in listing.stdout


@pytest.mark.docker
async def test_sandbox_tool_prints_what_the_host_computes(sandbox):
    calc = calc_tool()
    expressions = ["347 * 29", "-5 - -3", "1/3", "-2/3", "2**-3", "0.1 + 0.2", "7 // -2", "1/0",
                   "(", "2 ** 0.5", "-7 % 3", "10**99", "-" * 199 + "1"]
    expressions += [t.data["expression"] for t in list(calc_tasks())[::300]]
    for expression in expressions:
        result = await calc(ToolContext(sandbox), expression=expression)
        assert result.text == calculate(expression), expression


@pytest.mark.docker
async def test_calc_time_limit_is_an_observation(sandbox):
    result = await calc_tool(timeout_s=0.001)(ToolContext(sandbox), expression="347 * 29")
    assert result.timed_out and "timed out" in result.text


@pytest.mark.docker
async def test_oracle_scores_one_and_wrong_zero_through_the_real_env():
    source = calc_tasks()
    by_kind = {k: [t for t in source if t.metadata["kind"] == k][:4] for k in KINDS}
    sample = [t for tasks in by_kind.values() for t in tasks]
    env = CalculatorEnv(sandbox=SPEC)
    try:
        for t in sample:
            obs, info = await env.areset(options={"task_id": t.id})
            assert obs == t.prompt and info["messages"][0]["content"] == SYSTEM_PROMPT
            for action in oracle_actions(t):
                obs, reward, terminated, truncated, info = await env.astep(action)
            assert (reward, terminated, info["outcome"]) == (1.0, True, Outcome.SUCCESS), t
            assert info["messages"] == simulate(t, oracle_actions(t))  # host transcript == env
            await env.areset(options={"task_id": t.id})
            _, reward, terminated, _, info = await env.astep(wrong_actions(t)[0])
            assert (reward, terminated, info["outcome"]) == (0.0, True, Outcome.FAILURE), t
    finally:
        await env.aclose()


@pytest.mark.docker
async def test_hack_probes_score_zero_and_leave_nothing():
    env = CalculatorEnv(sandbox=SPEC)
    try:
        for t in list(calc_tasks())[:5]:
            for name, actions in env.hack_probes(t).items():
                await env.areset(options={"task_id": t.id})
                for action in actions:
                    obs, reward, terminated, truncated, info = await env.astep(action)
                assert terminated and reward == 0.0 and info["outcome"] == Outcome.FAILURE, name
        await env.areset(options={"task_id": "calc-train-0000"})
        obs, *_ = await env.astep(call("__import__('os').system('echo 1 > /work/answer.txt')"))
        assert obs.startswith("Error: only numbers")
        assert "answer.txt" not in (await env.sandbox.aexec("ls -A /work")).stdout
    finally:
        await env.aclose()


@pytest.mark.docker
def test_gymnasium_make_sync_episode(registered):
    env = gymnasium.make(registered, split="test", sandbox=SPEC)
    try:
        obs, info = env.reset(seed=7)
        t = env.unwrapped.tasks.get(info["task_id"])
        assert t.split == "test" and obs == t.prompt
        assert [s["function"]["name"] for s in info["tools"]] == ["calc"]
        for action in oracle_actions(t)[:-1]:
            obs, reward, terminated, truncated, info = env.step(action)
            assert not terminated and reward == 0.0 and info["tool_counts"].get("ok")
        obs, reward, terminated, truncated, info = env.step(oracle_actions(t)[-1])
        assert reward == 1.0 and terminated and not truncated
    finally:
        env.close()


@pytest.mark.docker
async def test_calculator_passes_check_env(registered):
    report = await check_env(registered, n_tasks=20)
    failed = [f"{r.name}: {r.detail}" for r in report.results if not r.ok]
    assert failed == []
    assert len(report.results) == 8


@pytest.mark.docker
async def test_many_episodes_on_a_pool(pool):
    """Episodes in flight at once share a warm pool (the trainer's set-up)."""
    source = calc_tasks().split("test")

    async def worker(ids: list[str]) -> list[float]:
        env = CalculatorEnv(split="test", provider=pool)
        rewards = []
        try:
            for task_id in ids:
                await env.areset(options={"task_id": task_id})
                for action in oracle_actions(source.get(task_id)):
                    _, reward, *_ = await env.astep(action)
                rewards.append(reward)
        finally:
            await env.aclose()
        return rewards

    ids = source.ids()[:32]
    results = await asyncio.gather(*(worker(ids[i::4]) for i in range(4)))
    assert [r for rs in results for r in rs] == [1.0] * 32


@pytest.mark.docker
async def test_a_thousand_native_calls_in_one_message_are_one_refusal_and_the_episode_goes_on():
    """1000 calls in one message all ran, one after another, in one step."""
    task = next(iter(calc_tasks()))
    env = CalculatorEnv(sandbox=SPEC)
    try:
        await env.areset(options={"task_id": task.id})
        calls = [{"id": f"c{i}", "type": "function",
                  "function": {"name": "calc", "arguments": '{"expression": "1 + 1"}'}}
                 for i in range(1000)]
        obs, reward, terminated, truncated, info = await env.astep(
            {"role": "assistant", "content": None, "tool_calls": calls})
        assert (reward, terminated, truncated) == (0.0, False, False)
        assert obs.startswith("This message makes 1000 tool calls; at most 32")
        answers = info["new_messages"]
        assert [m["tool_call_id"] for m in answers] == [c["id"] for c in calls]
        assert info["tool_counts"] == {"parse_error": 1}
        for action in oracle_actions(task):
            obs, reward, terminated, truncated, info = await env.astep(action)
        assert (reward, info["outcome"]) == (1.0, Outcome.SUCCESS)
    finally:
        await env.aclose()
