"""The HTML report in a real headless Chromium: table, sorting, the viewer, and escaping.

Driven with playwright against Debian's ``/usr/bin/chromium`` (no browser
download). Without a browser the test is skipped with the fix, except under
CI, where the set-up script installs one and a skip would hide a broken set-up.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import in_ci
from toolgym.eval.metrics import summarize
from toolgym.eval.report import render_report, report_data, write_report
from toolgym.rollout.trajectory import Trajectory, Turn
from toolgym.tools import ToolCall, render_tool_call

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or, under CI, fails) with the fix
    expect = None

CHROMIUM = os.environ.get("TOOLGYM_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = Path("/tmp/toolgym-eval-report.png")
ATTACK = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
BREAKOUT = "</script><script>window.__pwned=3</script><!--"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if expect is None or shutil.which(CHROMIUM) is None:
        why = ("needs the playwright package (pip install playwright; no `playwright install`) "
               f"and Debian's chromium at {CHROMIUM} (apt-get install -y chromium)")
        if in_ci():
            pytest.fail(f"CI is set, so the report test must run, but it {why}", pytrace=False)
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield b
        b.close()


def call(code: str) -> str:
    return "Let me try.\n" + render_tool_call(ToolCall("python", {"code": code}))


def episode(task: str, sample: int, outcome: str, *, hostile: bool = False) -> Trajectory:
    answer = ("Done.\n```python\ndef f():\n    return '" + (ATTACK if hostile else "ok")
              + "'\n```")
    turns = [
        Turn(call(f"print({sample} + 1)"), observation=f"{sample + 1}\n", reward=0.0),
        Turn(call("print('<b>not bold</b>')"), observation="<b>not bold</b>\n" + BREAKOUT,
             reward=0.0) if hostile else None,
        Turn(answer, observation="", reward=float(outcome == "success")),
    ]
    return Trajectory(env_id="toolgym/HumanEval-v0", task_id=task, outcome=outcome,
                      final_reward=float(outcome == "success"), seed=sample,
                      turns=[t for t in turns if t is not None], info={"sample": sample},
                      timings={"wall_s": 1.5, "model_s": 1.0, "env_s": 0.5})


TASKS = ["task/2", "task/10", "task/1", "task/<b>x</b>"]
SUCCESSES = {"task/2": 1, "task/10": 3, "task/1": 0, "task/<b>x</b>": 2}


def trajectories() -> list[Trajectory]:
    out = []
    for task in TASKS:
        for s in range(3):
            out.append(episode(task, s, "success" if s < SUCCESSES[task] else "failure",
                               hostile=task == "task/<b>x</b>"))
    out.append(Trajectory(env_id="toolgym/HumanEval-v0", task_id="task/1", outcome="infra_error",
                          info={"sample": 3, "error": "sandbox failed: <boom>"}))
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    trajs = trajectories()
    summary = summarize("toolgym/HumanEval-v0", "hf:<i>model</i>", 3, TASKS, trajs,
                        extra={"run_wall_s": 12.5, "run_episodes": 13})
    return write_report(tmp_path_factory.mktemp("report") / "report.html", summary, trajs)


@pytest.fixture
def page(browser: Any, report: Path) -> Iterator[Any]:
    page = browser.new_page(viewport={"width": 1400, "height": 950})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(report.as_uri())
    yield page
    assert errors == [], errors
    page.close()


def column(page: Any, index: int) -> list[str]:
    return page.locator(f"#task-table tbody tr td:nth-child({index})").all_inner_texts()


def test_header_and_table_show_every_task(page: Any) -> None:
    header = page.locator("header").inner_text()
    assert "toolgym/HumanEval-v0" in header and "hf:<i>model</i>" in header
    assert "pass@1" in header and "pass@3" in header and "infra error" in header
    assert column(page, 1) == TASKS
    assert column(page, 2) == ["3", "3", "3", "3"]  # task/1's infra error is not a sample
    assert column(page, 3) == ["1", "3", "0", "2"]
    assert column(page, 4) == ["33.3%", "100.0%", "0.0%", "66.7%"]
    assert "infra 1" in column(page, 6)[2]  # short badges in the table


def test_clicking_headers_sorts(page: Any) -> None:
    page.click("th[data-key=pass1]")  # numbers: highest first
    assert column(page, 1) == ["task/10", "task/<b>x</b>", "task/2", "task/1"]
    assert page.get_attribute("th[data-key=pass1]", "aria-sort") == "descending"
    page.click("th[data-key=pass1]")
    assert column(page, 4) == ["0.0%", "33.3%", "66.7%", "100.0%"]
    assert page.get_attribute("th[data-key=pass1]", "aria-sort") == "ascending"
    page.click("th[data-key=task]")  # ids: natural order, 2 before 10 (punctuation first)
    assert column(page, 1) == ["task/<b>x</b>", "task/1", "task/2", "task/10"]
    assert page.get_attribute("th[data-key=pass1]", "aria-sort") is None


def test_clicking_a_task_shows_its_turns(page: Any) -> None:
    page.click('tr[data-task="task/2"]')
    viewer = page.locator("#viewer")
    assert viewer.locator("h2").inner_text() == "task/2"
    assert viewer.locator("details.traj").count() == 3
    first = viewer.locator('details.traj[data-sample="0"]')
    assert first.locator(".turn").count() == 2
    text = first.inner_text()
    assert "python" in text and "print(0 + 1)" in text  # the tool call, structured
    assert first.locator("pre.observation").first.inner_text().strip() == "1"
    assert "Final reward" in text and "success" in text
    # Other samples render lazily, when opened.
    second = viewer.locator('details.traj[data-sample="1"]')
    assert second.locator(".turn").count() == 0
    second.locator("summary").click()
    expect(second.locator(".turn")).to_have_count(2)  # rendered on the toggle event
    assert "print(1 + 1)" in second.inner_text()
    assert page.evaluate("location.hash") == "#task=task%2F2"


def test_model_html_is_shown_as_text(page: Any) -> None:
    page.click('tr[data-task="task/<b>x</b>"]')
    viewer = page.locator("#viewer")
    viewer.locator('details.traj[data-sample="0"] details.raw summary').first.click()
    expect(viewer.locator("details.raw pre").first).to_be_visible()
    text = viewer.inner_text()
    assert ATTACK in text and "<b>not bold</b>" in text and BREAKOUT in text
    assert viewer.locator("img, script, b").count() == 0
    assert page.locator("script").count() == 2  # the data block and the app, nothing injected
    assert page.evaluate("window.__pwned") is None
    assert page.locator('#task-table td:text-is("task/<b>x</b>")').count() == 1
    page.click('tr[data-task="task/1"]')
    assert "sandbox failed: <boom>" in viewer.inner_text()  # the infra error, as text
    page.click('tr[data-task="task/2"]')
    page.screenshot(path=str(SCREENSHOT))


def test_data_block_cannot_be_closed_by_model_output() -> None:
    html = render_report(summarize("e", "a", 3, TASKS, trajectories()), trajectories())
    data = html.split('<script type="application/json" id="eval-data">', 1)[1]
    blob = data.split("</script>", 1)[0]
    assert "<" not in blob and ">" not in blob  # every < and > is a \\u escape


def test_a_full_humaneval_sized_report_stays_fast(browser: Any, tmp_path: Path) -> None:
    tasks = [f"HumanEval/{i}" for i in range(164)]
    trajs = [episode(t, s, "success" if (i + s) % 3 else "failure")
             for i, t in enumerate(tasks) for s in range(8)]
    for t in trajs:  # realistic message sizes
        t.turns[0].observation = "x" * 2000
    path = write_report(tmp_path / "report.html", summarize("e", "a", 8, tasks, trajs), trajs)
    assert path.stat().st_size < 20_000_000
    page = browser.new_page()
    start = time.perf_counter()
    page.goto(path.as_uri())
    assert page.locator("#task-table tbody tr").count() == 164
    page.click('tr[data-task="HumanEval/163"]')
    assert page.locator("#viewer details.traj").count() == 8
    assert page.locator("#viewer .turn").count() == 2  # only the open trajectory is rendered
    page.click("th[data-key=pass1]")
    assert time.perf_counter() - start < 10
    page.close()


def test_native_calls_and_reasoning_reach_the_viewer_data() -> None:
    native = [{"id": "c1", "type": "function",
               "function": {"name": "python", "arguments": '{"code": "print(2)"}'}}]
    turn = Turn("", observation="2", info={"tool_calls": native, "call_form": "native",
                                            "reasoning": "Let me run it."})
    traj = Trajectory(env_id="e", task_id="task/1", turns=[turn, Turn("4")], outcome="success",
                      final_reward=1.0, info={"sample": 0})
    data = report_data(summarize("e", "a", 1, ["task/1"], [traj]), [traj])
    shown, final = data["trajectories"]["task/1"][0]["turns"]
    assert shown["c"] == [{"name": "python", "arguments": {"code": "print(2)"}}]
    assert shown["n"] is True and shown["t"] == "Let me run it." and shown["perr"] is None
    assert final["c"] == [] and "n" not in final and "t" not in final


def test_inline_think_blocks_are_shown_as_reasoning() -> None:
    turn = Turn("<think>try 2+2</think>It is 4.")
    traj = Trajectory(env_id="e", task_id="t", turns=[turn], outcome="success",
                      final_reward=1.0, info={"sample": 0})
    (shown,) = report_data(summarize("e", "a", 1, ["t"], [traj]), [traj])[
        "trajectories"]["t"][0]["turns"]
    assert (shown["t"], shown["p"], shown["c"]) == ("try 2+2", "It is 4.", [])
