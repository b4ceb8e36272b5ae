"""Tests of the task record, the task sources, and the code env's task sets.

Programs are checked on the host in a subprocess (no sandbox): the verifier the
environment uses runs in Docker and has its own tests. Many programs share one
subprocess so that the ~1,400 checks here take seconds, not minutes.
"""

from __future__ import annotations

import doctest
import hashlib
import json
import os
import random
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import toolgym.envs.tasks as tasks_module
from toolgym.envs.code import (
    CODE_TASK_SOURCES,
    build_check_script,
    code_task_source,
    generated_tasks,
    humaneval_tasks,
    wrong_solution,
)
from toolgym.envs.code.families import FAMILIES
from toolgym.envs.tasks import (
    JSONLTaskSource,
    ListTaskSource,
    Task,
    TaskSource,
    UnknownTask,
    write_jsonl,
)
from toolgym.errors import ConfigError, ToolgymError

# ---------------------------------------------------------------- local runners


def run_tests_locally(program: str, test: str, entry_point: str, timeout: float = 10.0) -> bool:
    """Whether ``program`` passes HumanEval-style ``test`` when run in a fresh interpreter."""
    script = build_check_script(program, test, entry_point)
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-c", script],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


_BATCH_DRIVER = textwrap.dedent(
    """
    import contextlib, io, json, signal, sys

    class Timeout(BaseException):
        pass

    def on_alarm(signum, frame):
        raise Timeout()

    signal.signal(signal.SIGALRM, on_alarm)
    scripts = json.load(open(sys.argv[1]))
    per_item = float(sys.argv[3])
    results = []
    for script in scripts:
        signal.setitimer(signal.ITIMER_REAL, per_item)
        try:
            sink = io.StringIO()
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                exec(compile(script, "<candidate>", "exec"), {"__name__": "__main__"})
            results.append(True)
        except BaseException:
            results.append(False)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    json.dump(results, open(sys.argv[2], "w"))
    """
)


def run_batch_locally(
    jobs: list[tuple[str, str, str]], tmp_path: Path, per_item_timeout: float = 5.0
) -> list[bool]:
    """Like :func:`run_tests_locally` for many ``(program, test, entry_point)`` in one process.

    Each program gets fresh globals and its own alarm; a crash of the whole
    interpreter fails the test rather than returning partial results.
    """
    scripts = [build_check_script(*job) for job in jobs]
    src, out = tmp_path / f"batch-{len(scripts)}.json", tmp_path / f"results-{len(scripts)}.json"
    src.write_text(json.dumps(scripts))
    subprocess.run(
        [sys.executable, "-I", "-c", _BATCH_DRIVER, str(src), str(out), str(per_item_timeout)],
        check=True,
        timeout=60 + per_item_timeout * len(scripts) / 10,
    )
    results: list[bool] = json.loads(out.read_text())
    assert len(results) == len(jobs)
    return results


def _job(task: Task, program: str | None = None) -> tuple[str, str, str]:
    data = task.data
    return (program or data["reference_program"], data["test"], data["entry_point"])


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def humaneval() -> TaskSource:
    return humaneval_tasks()


@pytest.fixture(scope="module")
def generated() -> TaskSource:
    return generated_tasks(seed=0)


# ---------------------------------------------------------------- Task and sources


def test_task_copies_its_mappings_and_round_trips_through_dicts() -> None:
    data = {"answer": 5}
    task = Task(id="t", prompt="2 + 3?", data=data, metadata={"difficulty": 1})
    data["answer"] = 6
    assert task.data["answer"] == 5
    assert task.split == "test"  # a forgotten split is never trained on
    assert Task.from_dict(task.to_dict()) == task
    assert len({task, Task.from_dict(task.to_dict())}) == 1


def test_task_rejects_bad_records() -> None:
    with pytest.raises(ConfigError, match="promt"):
        Task.from_dict({"id": "t", "promt": "typo"})
    with pytest.raises(ConfigError, match="prompt"):
        Task.from_dict({"id": "t"})
    with pytest.raises(ConfigError, match="non-empty"):
        Task(id="", prompt="x")


def test_list_source_implements_the_protocol() -> None:
    tasks = [Task(f"t{i}", f"p{i}", split="train" if i % 3 else "test") for i in range(9)]
    source = ListTaskSource(tasks)
    assert isinstance(source, TaskSource)
    assert len(source) == 9 and source.ids() == [f"t{i}" for i in range(9)]
    assert list(source) == tasks and source.get("t4") is tasks[4]
    assert source.split("test").ids() == ["t0", "t3", "t6"]
    assert isinstance(source.split("train"), TaskSource)
    with pytest.raises(ConfigError, match=r"split 'valid'.*\['test', 'train'\]"):
        source.split("valid")
    with pytest.raises(ConfigError, match="Duplicate task id 't1'"):
        ListTaskSource([*tasks, Task("t1", "again")])


def test_sample_is_uniform_and_reproducible_with_either_generator() -> None:
    source = ListTaskSource([Task(f"t{i}", "p") for i in range(4)])
    draws = [source.sample(np.random.default_rng(7)).id for _ in range(3)]
    assert len(set(draws)) == 1  # same seed, same task
    rng = random.Random(0)
    counts = Counter(source.sample(rng).id for _ in range(4000))
    assert set(counts) == set(source.ids()) and min(counts.values()) > 850
    np_rng = np.random.default_rng(0)
    assert {source.sample(np_rng).id for _ in range(200)} == set(source.ids())
    with pytest.raises(ConfigError, match="empty"):
        ListTaskSource([]).sample(rng)


def test_unknown_id_says_how_many_exist_and_suggests_close_ones(humaneval: TaskSource) -> None:
    with pytest.raises(UnknownTask) as caught:
        humaneval.get("HumanEval/1000")
    error = caught.value
    assert isinstance(error, KeyError) and isinstance(error, ToolgymError)
    assert error.task_id == "HumanEval/1000" and error.n_ids == 164
    assert "HumanEval/100" in error.suggestions
    message = str(error)
    assert (
        "164 ids" in message and "Did you mean 'HumanEval/100'" in message and ".ids()" in message
    )
    with pytest.raises(UnknownTask, match=r"\(2 ids\)\. Call"):
        ListTaskSource([Task("a", "p"), Task("b", "p")]).get("zzzz")


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_jsonl_source_reads_back_what_was_written(tmp_path: Path, suffix: str) -> None:
    tasks = list(generated_tasks(seed=0))[:25]
    path = write_jsonl(tasks, tmp_path / f"tasks{suffix}")
    source = JSONLTaskSource(path)
    assert list(source) == tasks
    assert source.split("train").ids() == [t.id for t in tasks if t.split == "train"]


def test_jsonl_source_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "prompt": "p"}\n\n{"id": "b", "prompt": "p", "answer": 1}\n')
    with pytest.raises(ConfigError, match=r"bad\.jsonl:3: .*answer"):
        JSONLTaskSource(path)
    path.write_text("not json\n")
    with pytest.raises(ConfigError, match=r"bad\.jsonl:1"):
        JSONLTaskSource(path)


# ---------------------------------------------------------------- HumanEval


def test_humaneval_has_164_test_tasks_in_one_shared_format(humaneval: TaskSource) -> None:
    assert len(humaneval) == 164 and humaneval.ids()[0] == "HumanEval/0"
    assert {task.split for task in humaneval} == {"test"}
    with pytest.raises(ConfigError, match="train"):
        humaneval.split("train")
    for task in humaneval:
        data = task.data
        assert data["stub"] in task.prompt and f"def {data['entry_point']}(" in data["stub"]
        assert data["reference_program"] == data["stub"] + data["canonical_solution"]
        assert "def check(candidate)" in data["test"]
        assert data["canonical_solution"] not in task.prompt  # the answer stays hidden


def test_all_humaneval_reference_programs_pass_and_wrong_ones_fail(
    humaneval: TaskSource, tmp_path: Path
) -> None:
    tasks = list(humaneval)
    passed = run_batch_locally([_job(t) for t in tasks], tmp_path)
    assert [t.id for t, ok in zip(tasks, passed, strict=True) if not ok] == []
    wrong = run_batch_locally([_job(t, wrong_solution(t)) for t in tasks], tmp_path)
    assert [t.id for t, ok in zip(tasks, wrong, strict=True) if ok] == []


def test_local_runner_tells_pass_from_fail_from_hang(humaneval: TaskSource) -> None:
    task = humaneval.get("HumanEval/0")
    assert run_tests_locally(*_job(task))
    assert not run_tests_locally(*_job(task, wrong_solution(task)))
    hang = task.data["stub"] + "    while True:\n        pass\n"
    assert not run_tests_locally(*_job(task, hang), timeout=1.0)


# ---------------------------------------------------------------- generated tasks


def test_generated_tasks_are_many_unique_and_varied(generated: TaskSource) -> None:
    tasks = list(generated)
    assert len(tasks) >= 300
    assert len(set(generated.ids())) == len(tasks)
    assert len({t.prompt for t in tasks}) == len(tasks)
    assert len({t.data["reference_program"] for t in tasks}) == len(tasks)
    assert {t.metadata["family"] for t in tasks} == set(FAMILIES)
    assert {t.metadata["difficulty"] for t in tasks} == {1, 2, 3}
    per_template = Counter(t.metadata["template"] for t in tasks)
    assert len(per_template) == sum(len(f) for f in FAMILIES.values())
    for task in tasks:
        data = task.data
        assert task.prompt.count("```") == 2 and data["stub"] in task.prompt
        assert data["reference_program"] == data["stub"] + data["canonical_solution"]
        assert data["canonical_solution"] not in task.prompt
        assert data["test"].count("assert candidate(") >= 5


def test_generated_splits_are_disjoint_roughly_80_20_and_cover_every_family(
    generated: TaskSource,
) -> None:
    train, test = generated.split("train"), generated.split("test")
    assert len(train) + len(test) == len(generated)
    assert 0.12 < len(test) / len(generated) < 0.28
    assert not set(train.ids()) & set(test.ids())
    assert not {t.prompt for t in train} & {t.prompt for t in test}
    assert {t.metadata["family"] for t in test} == set(FAMILIES)


def test_all_generated_references_pass_and_wrong_solutions_fail(
    generated: TaskSource, tmp_path: Path
) -> None:
    tasks = list(generated)
    passed = run_batch_locally([_job(t) for t in tasks], tmp_path)
    assert [t.id for t, ok in zip(tasks, passed, strict=True) if not ok] == []
    wrong = run_batch_locally([_job(t, wrong_solution(t)) for t in tasks], tmp_path)
    assert [t.id for t, ok in zip(tasks, wrong, strict=True) if ok] == []


def test_a_constant_answer_fails_every_generated_task(
    generated: TaskSource, tmp_path: Path
) -> None:
    """Each test has at least two distinct expected values, so no constant passes."""
    tasks = list(generated)
    jobs = []
    for task in tasks:
        first = task.data["test"].splitlines()[1]  # "    assert candidate(...) == <value>"
        value = first.rsplit(" == ", 1)[1]
        jobs.append(_job(task, task.data["stub"] + f"    return {value}\n"))
    results = run_batch_locally(jobs, tmp_path)
    assert [t.id for t, ok in zip(tasks, results, strict=True) if ok] == []


def test_train_solutions_do_not_pass_test_tasks_of_the_same_template(
    generated: TaskSource, tmp_path: Path
) -> None:
    """Memorising the train split must not solve the test split."""
    train_by_template: dict[str, list[Task]] = {}
    for task in generated.split("train"):
        train_by_template.setdefault(task.metadata["template"], []).append(task)
    jobs, pairs = [], []
    for task in generated.split("test"):
        for seen in train_by_template.get(task.metadata["template"], []):
            alias = f"\n\n{task.data['entry_point']} = {seen.data['entry_point']}\n"
            jobs.append(_job(task, seen.data["reference_program"] + alias))
            pairs.append((seen.id, task.id))
    assert len(jobs) > 200
    results = run_batch_locally(jobs, tmp_path)
    assert [pair for pair, ok in zip(pairs, results, strict=True) if ok] == []


def test_generated_docstring_examples_are_correct(generated: TaskSource) -> None:
    for task in generated:
        namespace: dict[str, object] = {}
        exec(task.data["reference_program"], namespace)  # our own reference code
        function = namespace[task.data["entry_point"]]
        assert ">>> " in str(function.__doc__), task.id
        result = doctest.DocTestRunner(verbose=False)
        for test in doctest.DocTestFinder().find(function, globs=namespace):
            result.run(test, out=lambda _: None)
        assert result.failures == 0, task.id


def _digest(tasks: TaskSource) -> str:
    lines = [json.dumps(t.to_dict(), sort_keys=True) for t in tasks]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def test_generation_is_deterministic_across_processes(generated: TaskSource) -> None:
    child = (
        "import hashlib, json\n"
        "from toolgym.envs.code import generated_tasks\n"
        "lines = [json.dumps(t.to_dict(), sort_keys=True) for t in generated_tasks(seed=0)]\n"
        "print(hashlib.sha256('\\n'.join(lines).encode()).hexdigest())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == _digest(generated)


def test_different_seeds_give_different_constants(generated: TaskSource) -> None:
    other = generated_tasks(seed=1)
    assert len(other) == len(generated)
    shared = {t.prompt for t in generated} & {t.prompt for t in other}
    assert len(shared) < 0.1 * len(generated)
    shared_tests = {t.data["test"] for t in generated} & {t.data["test"] for t in other}
    assert not shared_tests


def test_fewer_tasks_are_a_prefix_with_the_same_splits(generated: TaskSource) -> None:
    small = generated_tasks(seed=0, n=100)
    assert list(small) == list(generated)[:100]


def test_sources_are_found_by_name() -> None:
    assert set(CODE_TASK_SOURCES) == {"humaneval", "generated"}
    assert len(code_task_source("humaneval")) == 164
    with pytest.raises(ConfigError, match=r"'humaneval'"):
        code_task_source("human_eval")


def test_docstring_examples_of_the_task_module_hold() -> None:
    assert doctest.testmod(tasks_module).failed == 0
