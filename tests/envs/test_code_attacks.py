"""The code verifier against the attacks that forged rewards (issue 16), on real Docker.

Each attack scored 1.0 on the verifier that ran the answer inside the harness's
own process: the nonce was readable from the interpreter's state, an
excepthook or ``atexit`` could print it after a failing test, an always-equal
return value passed the asserts, and CodeRetry's feedback showed the asserts
to build a lookup table from. Every one must now be a plain failure.
"""

from __future__ import annotations

import pytest

from toolgym.envs import Outcome
from toolgym.envs.checker import run_actions
from toolgym.envs.code.env import CodeEnv, CodeRetryEnv
from toolgym.envs.code.harness import plain_value
from toolgym.envs.probes import PROBE_PROGRAMS, generic_probes, submit_python
from toolgym.sandbox.base import AGENT_UID

pytestmark = pytest.mark.docker
HUMANEVAL = ["HumanEval/0", "HumanEval/32", "HumanEval/53"]
"""Float tolerance with a helper from the stub, a loop over random inputs, a plain one."""


@pytest.fixture
async def envs(pool):
    made = {"humaneval": CodeEnv("humaneval", provider=pool),
            "generated": CodeEnv("generated", provider=pool),
            "retry": CodeRetryEnv("generated", max_attempts=3, provider=pool)}
    yield made
    for env in made.values():
        await env.aclose()


def _cases():
    for probe in PROBE_PROGRAMS:
        for task_id in HUMANEVAL:
            yield "humaneval", task_id, probe
        yield "generated", "generated/strings.caesar-000", probe


@pytest.mark.parametrize(("source", "task_id", "probe"), list(_cases()))
async def test_forging_attack_scores_zero_as_a_failure(envs, source, task_id, probe):
    env = envs[source]
    actions = generic_probes(env.tasks.get(task_id))[probe]
    reward, outcome, _ = await run_actions(env, actions, options={"task_id": task_id})
    assert (reward, outcome) == (0.0, Outcome.FAILURE)


async def test_retry_feedback_gives_no_asserts_to_build_a_lookup_table_from(envs):
    env = envs["retry"]
    task = env.tasks.get(env.tasks.ids()[0])
    actions = generic_probes(task)["retry with a lookup table built from the feedback"]
    reward, outcome, observations = await run_actions(env, actions, options={"task_id": task.id})
    assert reward == 0.0 and outcome is None  # attempt 2 failed too; a third is allowed
    feedback = observations[1]
    assert "attempt 1 of 3" in feedback and "a hidden test failed (AssertionError)." in feedback
    assert "assert" not in feedback.replace("AssertionError", "") and "candidate" not in feedback


async def test_the_answer_runs_in_another_process_than_the_tests(envs):
    """The candidate's own traceback and prints come back; the tests' frames never do."""
    env = envs["humaneval"]
    program = ("import inspect, os\n"
               "def has_close_elements(numbers, threshold):\n"
               "    print('callers:', [f.filename for f in inspect.stack()])\n"
               "    parent = os.stat(f'/proc/{os.getppid()}').st_uid\n"
               "    print('uid', os.getuid(), 'parent uid', parent)\n"
               "    try:\n"
               "        os.kill(os.getppid(), 0)\n"
               "    except PermissionError:\n"
               "        print('cannot signal the harness')\n"
               "    raise KeyError('mine')\n")
    await env.areset(options={"task_id": "HumanEval/0"})
    _, reward, _, _, info = await env.astep(submit_python(program))
    details = info["score"].details
    assert (reward, info["outcome"], details["kind"]) == (0.0, Outcome.FAILURE, "raised")
    assert "KeyError: 'mine'" in details["feedback"] and "solution.py" in details["feedback"]
    assert "callers: ['solution.py', '<string>', '<string>']" in details["output"]
    assert "check" not in details["output"] + details["feedback"]
    assert f"uid {AGENT_UID} parent uid 0" in details["output"]
    assert "cannot signal the harness" in details["output"]


async def test_hostile_programs_are_failures_not_infra_errors(envs):
    env = envs["humaneval"]
    hostile = {
        "a huge result": "def has_close_elements(n, t):\n    return 'x' * (8 << 20)\n",
        "a deeply nested result": (
            "def has_close_elements(n, t):\n    v = []\n    for _ in range(100000):\n"
            "        v = [v]\n    return v\n"),
        "a result that is no literal": "def has_close_elements(n, t):\n    return object()\n",
        "killing the harness": (
            "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
            "def has_close_elements(n, t):\n    return True\n"),
        "garbage on the reply pipe": (
            "import os\nos.write(1, b'\\x00\\x00\\x00\\x05hello')\n"
            "def has_close_elements(n, t):\n    return True\n"),
        "a hang": "def has_close_elements(n, t):\n    while True:\n        pass\n",
        "sys.exit(0) in the call": (
            "import sys\ndef has_close_elements(n, t):\n    sys.exit(0)\n"),
        "no function": "x = 1\n",
    }
    env.verifier = type(env.verifier)(timeout_s=3.0)
    for name, program in hostile.items():
        reward, outcome, _ = await run_actions(env, [submit_python(program)],
                                               options={"task_id": "HumanEval/0"})
        assert (name, reward, outcome) == (name, 0.0, Outcome.FAILURE)


def test_results_are_rebuilt_as_plain_values_only():
    assert plain_value("[1, 2.5, 'a', (None, True), {1: b'x'}, set(), nan]")[:4] == [
        1, 2.5, "a", (None, True)]
    assert plain_value("-inf") == float("-inf")
    assert plain_value("frozenset({1})") == frozenset({1})
    for text in ("<object at 0x1>", "__import__('os')", "f(1)", "[" * 5000 + "]" * 5000):
        with pytest.raises(BaseException, match="not a plain Python value"):
            plain_value(text)


async def test_the_nonce_is_nowhere_the_candidate_can_look(envs, monkeypatch):
    """The hunt of the probes prints every 32-hex string of its frames, the parent's
    cmdline, environ and memory: the harness's nonce is not among them."""
    import toolgym.envs.code.verifier as verifier

    nonce = "0123456789abcdef0123456789abcdef"
    monkeypatch.setattr(verifier.secrets, "token_hex", lambda _: nonce)
    program = PROBE_PROGRAMS["print the nonce found in the interpreter's state and exit 0"]
    program = program.format(name="has_close_elements").replace(
        "_claim(_NONCES)", "print('found', len(_NONCES), _NONCES)")
    env = envs["humaneval"]
    await env.areset(options={"task_id": "HumanEval/0"})
    _, reward, _, _, info = await env.astep(submit_python(program))
    output = info["score"].details["output"]
    assert reward == 0.0 and output.startswith("found ") and nonce not in output
