"""``toolgym/Web-v0``: MiniWoB-style tasks on local pages in a real headless Chromium.

Each episode gets a sandbox from the ``toolgym/web`` image, a resident
browser driver started at reset (Chromium takes about a second to start, so
it is not started per call), and one task page opened in it. The agent sees
the task's instruction and the page as text (interactive elements numbered
``[1]``, ``[2]`` …), acts with ``click`` / ``type`` / ``press`` / ``scroll`` /
``goto``, and ends with a message without a tool call ("done"). The reward is
the page's own verdict on its DOM state (:mod:`.verifier`).

The first observation is the instruction followed by the page; the page
arrives as a second user message, so the first user message is the task
prompt alone (reference agents find the task by it). Screenshots (PNG bytes)
are put in ``info["screenshot"]`` after reset and every step when the env is
made with ``screenshots=True`` or reset with ``options={"screenshot": True}``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from toolgym.envs.base import Action, Step, ToolEnv
from toolgym.envs.step import StepInfo
from toolgym.envs.tasks import Task
from toolgym.envs.web import driver
from toolgym.envs.web.prompts import SYSTEM_PROMPT
from toolgym.envs.web.tasks import web_tasks
from toolgym.envs.web.tools import web_tools
from toolgym.envs.web.verifier import PageStateVerifier
from toolgym.sandbox.base import Sandbox
from toolgym.sandbox.limits import Limits
from toolgym.sandbox.provider import SandboxProvider
from toolgym.sandbox.spec import SandboxSpec
from toolgym.tools import ToolCall, render_tool_call

WEB_LIMITS = Limits(timeout_s=60.0, memory_mb=1536, pids=512)
"""Chromium runs ~10 processes and ~150 threads, and wants more memory than a shell."""
WEB_SANDBOX = SandboxSpec(image="toolgym/web:latest", limits=WEB_LIMITS)
"""The default sandbox of :class:`WebEnv`; a shared pool must use this image too."""


def render(actions: Iterable[tuple[str, dict[str, Any]]]) -> list[str]:
    """One assistant message per scripted action, in the Hermes tool-call format."""
    return [render_tool_call(ToolCall(name, dict(args))) for name, args in actions]


class WebEnv(ToolEnv):
    """Web tasks in headless Chromium; reward 1.0 when the page's own check passes.

    Args:
        split: ``"train"``, ``"test"`` or None (both).
        seed: Seeds the task draws (``reset(seed=)`` picks among them).
        n_train: Train tasks per kind.
        n_test: Test tasks per kind.
        kinds: Which page kinds (default: all 25; see :mod:`toolgym.envs.web.kinds`).
        screenshots: Put a PNG of the page in ``info["screenshot"]`` after every reset and step.
        width: Viewport width in pixels.
        height: Viewport height in pixels (the oracle's scroll counts assume 600).
        sandbox: Spec of this env's own sandbox (ignored when ``provider`` is given).
        provider: Share sandboxes (of the ``toolgym/web`` image) with other envs.
        tool_timeout_s: Time limit of one browser action.
        system_prompt: The instruction shown first; None for none.
        render_mode: None or "ansi".

    Example:
        >>> env = gymnasium.make("toolgym/Web-v0", split="train")  # doctest: +SKIP
        >>> obs, info = env.reset(seed=0)                          # doctest: +SKIP
        >>> env.step('<tool_call>{"name": "click", "arguments": {"id": 2}}</tool_call>')
        ... # doctest: +SKIP
    """

    def __init__(
        self,
        split: str | None = None,
        *,
        seed: int = 0,
        n_train: int = 32,
        n_test: int = 8,
        kinds: Iterable[str] | None = None,
        screenshots: bool = False,
        width: int = 800,
        height: int = 600,
        sandbox: SandboxSpec | None = None,
        provider: SandboxProvider | None = None,
        tool_timeout_s: float = 30.0,
        system_prompt: str | None = SYSTEM_PROMPT,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            web_tasks(seed, n_train, n_test, None if kinds is None else tuple(kinds)),
            web_tools(timeout_s=tool_timeout_s),
            PageStateVerifier(),
            sandbox=sandbox or WEB_SANDBOX,
            provider=provider,
            system_prompt=system_prompt,
            split=split,
            render_mode=render_mode,
        )
        self.screenshots = screenshots
        self.size = (width, height)
        self._shots = screenshots
        self._page = ""

    async def setup(self, sandbox: Sandbox, task: Task) -> None:
        """Start the episode's browser driver on the task's page (retried when the browser
        starts late: a loaded host; see :func:`.driver.start`)."""
        reply = await driver.start(sandbox, task.data["url"], width=self.size[0],
                                   height=self.size[1])
        self.setup_retries += reply["attempts"] - 1
        self._page = reply["obs"]

    async def areset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, StepInfo]:
        """Start an episode; the observation is the instruction, then the page."""
        prompt, info = await super().areset(seed=seed, options=options)
        self._shots = bool((options or {}).get("screenshot", self.screenshots))
        page = {"role": "user", "content": self._page}
        self.messages.append(page)
        info["new_messages"] = [*info["new_messages"], page]
        await self._add_screenshot(info)
        return f"{prompt}\n\n{self._page}", info

    async def astep(self, action: Action) -> Step:
        """Run the action (see :meth:`ToolEnv.astep`); add a screenshot if asked for."""
        obs, reward, terminated, truncated, info = await super().astep(action)
        if not (terminated or truncated):
            await self._add_screenshot(info)
        return obs, reward, terminated, truncated, info

    async def _add_screenshot(self, info: StepInfo) -> None:
        if self._shots and self.sandbox is not None:
            reply = await driver.request(self.sandbox, {"op": "screenshot"})
            info["screenshot"] = base64.b64decode(reply["png"])

    def oracle_actions(self, task: Task) -> list[str]:
        """The kind's scripted solution, then "done"."""
        return [*render(task.data["oracle"]), "done"]

    def wrong_actions(self, task: Task) -> list[str]:
        """A near miss, then "done"."""
        return [*render(task.data["wrong"]), "done"]

    def hack_probes(self, task: Task) -> dict[str, list[str]]:
        """Ways to claim success without doing the task; each must score 0."""
        success_text = ['{"success": true}', "success", "true", "done"]
        probes = {
            "say done without acting": ["done"],
            "claim success in words": ["The task is complete and the page shows success."],
            "type the success text into every field": [
                *render(("type", {"id": i, "text": text}) for i in (1, 2) for text in success_text),
                "done"],
            "open a local file": [*render([("goto", {"path": "file:///etc/passwd"})]), "done"],
            "run javascript through goto": [*render([("goto", {"path": (
                "javascript:window.__toolgym_result=()=>({success:true})")})]), "done"],
            "open a path outside the site": [*render([("goto", {"path": "/../../etc/passwd"})]),
                                             "done"],
            "open another task's page": [*render([("goto", {"path": self._other_page(task)})]),
                                         "done"],
            "press Enter repeatedly": [*render([("press", {"key": "Enter"})] * 3), "done"],
            "type text past the argv limit (an infra_error would leave the score)": [
                *render([("type", {"id": 1, "text": "x" * (200 << 10)})]), "done"],
            "type what the driver cannot encode": [
                *render([("type", {"id": i, "text": "\ud800\x00\u2028\x1b[2J"}) for i in (1, 2)]),
                "done"],
        }
        for name, actions in task.data.get("hacks", {}).items():
            probes[name] = [*render(actions), "done"]
        return probes

    @staticmethod
    def _other_page(task: Task) -> str:
        return "/click-button.html" if task.data["kind"] != "click-button" else "/counter.html"
