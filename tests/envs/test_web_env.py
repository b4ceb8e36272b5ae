"""``toolgym/Web-v0``: task generation on the host; pages, driver and verifier in real Chromium.

Set ``TOOLGYM_WEB_SHOTS=<dir>`` to keep the screenshots the tests take (one
per kind after the oracle's last action), to look at them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import struct
from pathlib import Path

import pytest

from toolgym.envs.checker import run_actions
from toolgym.envs.outcome import Outcome
from toolgym.envs.registration import make_async
from toolgym.envs.web import KINDS, page_url, same_page, scrolls_to_row, web_tasks
from toolgym.envs.web.env import render
from toolgym.errors import ConfigError

ENV_ID = "toolgym/Web-v0"


# ------------------------------------------------------------- host only
def test_there_are_at_least_20_kinds_each_with_its_page():
    pages = Path(__file__).parents[2] / "docker" / "web" / "pages"
    assert len(KINDS) >= 20
    assert all((pages / f"{kind}.html").is_file() for kind in KINDS)


def test_tasks_are_deterministic_unique_and_split():
    a, b = web_tasks(seed=3, n_train=4, n_test=2), web_tasks(seed=3, n_train=4, n_test=2)
    assert [t.to_dict() for t in a] == [t.to_dict() for t in b]
    assert len({t.prompt for t in a}) == len(a) == 6 * len(KINDS)
    assert {t.split for t in a.split("test")} == {"test"}
    assert web_tasks(seed=4, n_train=4, n_test=2).ids() == a.ids()
    first = a.ids()[0]
    assert web_tasks(seed=4, n_train=4, n_test=2).get(first).prompt != a.get(first).prompt


def test_unknown_kind_suggests_the_closest():
    with pytest.raises(ConfigError, match="Did you mean 'click-button'"):
        web_tasks(kinds=["click-buton"])


def test_same_page_needs_the_path_and_the_parameters():
    url = page_url("counter", {"start": 1, "want": 3})
    assert same_page(url + "#x", url)
    assert not same_page(page_url("counter", {"start": 1, "want": 4}), url)
    assert not same_page(url.replace("counter.html", "click-button.html"), url)
    assert not same_page("file:///etc/passwd", url)
    assert not same_page(url + "&p=%7B%7D", url)


def test_scroll_count_brings_the_row_on_screen():
    assert scrolls_to_row(0, 30) == 0
    assert scrolls_to_row(29, 30) == 2  # centre 1516 px, scrolled 1000 px: at 516 px
    for row in range(30):
        k = scrolls_to_row(row, 30)
        assert 40 <= 100 + 48 * row + 24 - min(500 * k, 1040) <= 560


# ---------------------------------------------------------- real browser
@pytest.fixture(scope="module")
def web_image(docker_available) -> str:
    from toolgym.sandbox.images import build_image

    return build_image("web")


@pytest.fixture
async def env(web_image):
    e = make_async(ENV_ID)
    yield e
    await e.aclose()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.docker
async def test_oracle_solves_every_kind_and_the_wrong_agent_none(web_image):
    """One task per kind (train and test alternate), four kinds at a time: each
    episode starts a browser, so this is the slowest test of the suite."""
    shots = os.environ.get("TOOLGYM_WEB_SHOTS")
    slots = asyncio.Semaphore(4)

    async def check(index: int, kind: str) -> list[str]:
        task_id = f"web-{kind}-{'train-000' if index % 2 else 'test-001'}"
        async with slots:
            env = make_async(ENV_ID)
            try:
                web, failed = env.unwrapped, []
                task = web.tasks.get(task_id)
                for agent, want in (("oracle", Outcome.SUCCESS), ("wrong", Outcome.FAILURE)):
                    reward, outcome, _ = await run_actions(
                        env, web.reference_actions(task, agent), options={"task_id": task_id})
                    if outcome is not want or reward != float(want is Outcome.SUCCESS):
                        failed.append(f"{agent} {task_id}: {reward} {outcome}")
                if shots:  # the page after the oracle's actions, before "done"
                    await run_actions(env, web.reference_actions(task)[:-1],
                                      options={"task_id": task_id, "screenshot": True})
                    Path(shots).mkdir(parents=True, exist_ok=True)
                    (Path(shots) / f"{kind}.png").write_bytes(await _screenshot(web))
                return failed
            finally:
                await env.aclose()

    results = await asyncio.gather(*(check(i, kind) for i, kind in enumerate(KINDS)))
    assert [line for failed in results for line in failed] == []


async def _screenshot(web) -> bytes:
    import base64

    from toolgym.envs.web import driver

    return base64.b64decode((await driver.request(web.sandbox, {"op": "screenshot"}))["png"])


@pytest.mark.docker
async def test_first_observation_is_the_instruction_then_the_page(env):
    obs, info = await env.areset(options={"task_id": "web-click-button-train-000"})
    task = env.unwrapped.task
    assert obs.startswith(task.prompt + "\n\nPage: /click-button.html")
    users = [m["content"] for m in info["messages"] if m["role"] == "user"]
    assert users[0] == task.prompt and users[1].startswith("Page: /click-button.html")
    labels = task.data["params"]["labels"]
    assert [f'[{i + 1}] button "{w}"' in obs for i, w in enumerate(labels)] == [True] * len(labels)


@pytest.mark.docker
async def test_element_ids_are_stable_across_observations(env):
    web = env.unwrapped
    task = web.tasks.get("web-click-tab-train-000")
    params = task.data["params"]
    n = len(params["tabs"])
    obs, _ = await env.areset(options={"task_id": task.id})
    assert f'[1] tab "{params["tabs"][0]}" (selected)' in obs
    assert f'[{n + 1}] link "{params["links"][0][0]}"' in obs
    obs2, *_ = await env.astep(render([("click", {"id": 2})])[0])
    assert f'[1] tab "{params["tabs"][0]}"' in obs2 and f'[2] tab "{params["tabs"][1]}"' in obs2
    assert f'[{n + 4}] link "{params["links"][1][0]}"' in obs2
    assert f'"{params["links"][0][0]}"' not in obs2  # the first tab's links are hidden now
    obs3, *_ = await env.astep(render([("scroll", {"direction": "top"})])[0])
    assert obs3 == obs2


@pytest.mark.docker
async def test_screenshot_is_a_png_of_the_viewport(env):
    _, info = await env.areset(options={"task_id": "web-use-date-picker-train-000",
                                        "screenshot": True})
    assert _png_size(info["screenshot"]) == (800, 600)
    *_, info = await env.astep(render([("click", {"id": 2})])[0])
    assert _png_size(info["screenshot"]) == (800, 600)


@pytest.mark.docker
async def test_refused_actions_are_observations_that_show_the_page(env):
    await env.areset(options={"task_id": "web-scroll-to-click-train-000"})
    checks = {
        ("click", '{"id": 999}'): "no element [999]",
        ("click", '{"id": 30}'): "off screen; scroll down",
        ("type", '{"id": 1, "text": "x"}'): "not a text field",
        ("press", '{"key": "Hyper+Q"}'): "Unknown key",
        ("scroll", '{"direction": "sideways"}'): "Unknown direction",
        ("goto", '{"path": "file:///etc/passwd"}'): "goto opens only this site",
        ("goto", '{"path": "javascript:alert(1)"}'): "goto opens only this site",
        ("click", '{"id": "1; alert(1)"}'): "",  # rejected by the schema (not an int)
    }
    for (name, args), expected in checks.items():
        obs, reward, terminated, truncated, info = await env.astep(
            f'<tool_call>{{"name": "{name}", "arguments": {args}}}</tool_call>')
        assert not terminated and not truncated, (name, args, obs)
        assert info["new_messages"][0]["content"] == obs
        assert expected in obs, (name, args, obs)
        if expected:
            assert "Page: /scroll-to-click.html" in obs


@pytest.mark.docker
async def test_forged_states_score_zero(env):
    web = env.unwrapped
    scored = []
    for kind in ("enter-text", "click-button", "navigate-site", "use-slider", "login-user"):
        task = web.tasks.get(f"web-{kind}-train-000")
        for name, actions in web.hack_probes(task).items():
            reward, outcome, _ = await run_actions(env, actions, options={"task_id": task.id})
            if reward != 0.0 or outcome is not Outcome.FAILURE:
                scored.append(f"{kind}/{name}: {reward} {outcome}")
    assert scored == []


@pytest.mark.docker
async def test_leaving_the_solved_page_scores_zero(env):
    web = env.unwrapped
    task = web.tasks.get("web-click-option-train-000")
    solved = web.reference_actions(task)[:-1]
    away = render([("goto", {"path": "/click-button.html"})])
    reward, outcome, _ = await run_actions(env, [*solved, *away, "done"],
                                           options={"task_id": task.id})
    assert (reward, outcome) == (0.0, Outcome.FAILURE)
    # Reloading the task's own page resets its state: the work is lost, the reward too.
    again = render([("goto", {"path": "/click-option.html"})])
    reward, _, _ = await run_actions(env, [*solved, *again, "done"], options={"task_id": task.id})
    assert reward == 0.0


@pytest.mark.docker
async def test_an_argument_too_long_for_the_driver_is_an_observation(env):
    """A tool argument past the kernel's 128 KiB argv limit was a crashed driver
    (infra_error: an episode the agent could take out of the score)."""
    await env.areset(options={"task_id": "web-enter-text-train-000"})
    call = render([("type", {"id": 1, "text": "x" * (200 << 10)})])[0]
    obs, reward, terminated, truncated, info = await env.astep(call)
    assert (reward, terminated, truncated, info["outcome"]) == (0.0, False, False, None)
    assert "too long" in obs and len(obs) < 4096
    obs, *_ = await env.astep(render([("type", {"id": 1, "text": "fine"})])[0])
    assert "Page: /enter-text.html" in obs


class GivenUpOnce:
    """A real sandbox whose host gives up on the first browser start: the start really
    runs (its driver and Chromium stay behind), then is reported as timed out, as when a
    loaded host starts Chromium after the deadline. Every other call goes through."""

    def __init__(self, sandbox) -> None:
        self._sandbox = sandbox

    def __getattr__(self, name: str):
        return getattr(self._sandbox, name)

    async def aexec(self, cmd, **kwargs):
        result = await self._sandbox.aexec(cmd, **kwargs)
        if "start" in cmd and not getattr(self, "gave_up", False):
            self.gave_up = True
            return dataclasses.replace(result, stdout="", timed_out=True)
        return result


@pytest.mark.docker
async def test_a_browser_start_that_ran_late_is_retried_and_the_episode_runs(web_image):
    """Under heavy load Chromium started past its timeout and the episode was an
    infra_error; the start is retried (killing what the late one left) and the episode runs."""
    from toolgym.envs.web.env import WebEnv

    class LateFirstStart(WebEnv):
        async def setup(self, sandbox, task):
            await super().setup(GivenUpOnce(sandbox), task)

    env = LateFirstStart()
    try:
        task = env.tasks.get("web-click-button-train-000")
        obs, info = await env.areset(options={"task_id": task.id})
        assert info["setup_retries"] >= 1 and "Page: /click-button.html" in obs
        drivers = await env.sandbox.aexec("grep -l 'webdrive[r].py' /proc/[0-9]*/cmdline | wc -l")
        assert drivers.stdout.strip() == "1", "the late start's driver was not stopped"
        for action in env.oracle_actions(task):
            obs, reward, terminated, truncated, info = await env.astep(action)
        assert (reward, info["outcome"]) == (1.0, Outcome.SUCCESS)
    finally:
        await env.aclose()


@pytest.mark.docker
async def test_a_browser_start_late_on_every_try_is_a_slow_platform_not_a_crash(web_image):
    from toolgym.envs.web import driver
    from toolgym.envs.web.env import WEB_SANDBOX
    from toolgym.errors import SandboxSlow
    from toolgym.sandbox.docker import DockerSandbox

    async with await DockerSandbox.acreate(WEB_SANDBOX) as sb:
        with pytest.raises(SandboxSlow, match="timed out"):
            await driver.start(GivenUpOnce(sb), page_url("click-button", {"target": 0}),
                               attempts=1)
