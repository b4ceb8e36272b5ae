"""Reward from the page's own state, read through the driver when the episode ends.

The page computes its verdict (``window.__toolgym_result()``) from its DOM
and from what its own event handlers recorded, against the parameters in its
URL. The verifier accepts it only if the browser is still on the task's own
page with the task's own parameters (the path and the decoded ``p`` query
must match; the ``#section`` may differ), so opening another page or another
task's parameters scores 0. The final message itself is ignored: saying
"done" proves nothing.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

from toolgym.envs.outcome import Score
from toolgym.envs.tasks import Task
from toolgym.envs.web import driver
from toolgym.sandbox.base import Sandbox


def same_page(href: str, url: str) -> bool:
    """Whether ``href`` is the page of ``url`` with the same parameters (any fragment).

    Example:
        >>> base = "file:///p/a.html?p=%7B%22x%22%3A1%7D"
        >>> same_page(base + "#pricing", base), same_page(base.replace("a.html", "b.html"), base)
        (True, False)
    """
    got, want = urllib.parse.urlsplit(href), urllib.parse.urlsplit(url)
    if (got.scheme, got.netloc, got.path) != (want.scheme, want.netloc, want.path):
        return False
    try:
        got_p = urllib.parse.parse_qs(got.query, strict_parsing=True)
        want_p = urllib.parse.parse_qs(want.query, strict_parsing=True)
        return (set(got_p) == {"p"} and len(got_p["p"]) == 1
                and json.loads(got_p["p"][0]) == json.loads(want_p["p"][0]))
    except (ValueError, KeyError):
        return False


@dataclass(frozen=True)
class PageStateVerifier:
    """Reward 1.0 iff the task's page, still open, reports success from its own DOM state."""

    needs_sandbox = False
    """The browser must survive until scoring: no sandbox reset before :meth:`score`."""

    async def score(self, sandbox: Sandbox | None, task: Task, answer: str) -> Score:
        """Read the page's verdict; the final message ``answer`` is not used.

        Raises:
            SandboxCrashed: the driver is gone (an infrastructure error, not a 0).
        """
        assert sandbox is not None, "the page lives in the sandbox: web envs hold one"
        reply = await driver.request(sandbox, {"op": "result"})
        href = str(reply.get("href", ""))
        result: Any = reply.get("result")
        on_page = same_page(href, task.data["url"])
        passed = on_page and isinstance(result, dict) and result.get("success") is True
        details = {"page": urllib.parse.urlsplit(href).path.rsplit("/", 1)[-1],
                   "on_task_page": on_page, "state": result}
        return Score(1.0 if passed else 0.0, passed=passed, details=details)
