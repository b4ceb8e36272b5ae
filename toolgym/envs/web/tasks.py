"""The task source of ``toolgym/Web-v0``: seeded draws of every page kind, split train / test.

Each task is one page (``docker/web/pages/<kind>.html``) with parameters
drawn by :mod:`toolgym.envs.web.kinds`. The page reads them from its URL
(``?p=<JSON>``), so the URL is the whole task as the browser sees it.
``Task.data`` holds, for the env and the verifier only: ``kind``,
``params``, ``url``, and the scripted ``oracle`` / ``wrong`` / ``hacks``
action lists.

Prompts are unique (a reference agent finds the task by its prompt), and the
split of a task is a hash of its prompt, so a task never changes split when
more are drawn. Lists are prefix-stable per kind: more tasks per kind only
append.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import random
import urllib.parse
from collections.abc import Iterable
from functools import cache

from toolgym.envs.tasks import ListTaskSource, Task
from toolgym.envs.web.kinds import KINDS, Draft
from toolgym.errors import ConfigError

PAGES_DIR = "/opt/toolgym-web/pages"
"""Where the image keeps the pages (see docker/web/Dockerfile)."""
TEST_FRACTION = 0.2


def page_url(kind: str, params: dict) -> str:
    """The ``file:`` URL of ``kind``'s page with ``params`` in its query.

    Example:
        >>> page_url("click-button", {"target": 0})
        'file:///opt/toolgym-web/pages/click-button.html?p=%7B%22target%22%3A0%7D'
    """
    query = urllib.parse.urlencode({"p": json.dumps(params, separators=(",", ":"))})
    return f"file://{PAGES_DIR}/{kind}.html?{query}"


def split_of(prompt: str) -> str:
    """``"test"`` or ``"train"``, from a hash of the prompt."""
    bucket = int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:8], "big") / 2**64
    return "test" if bucket < TEST_FRACTION else "train"


def web_tasks(seed: int = 0, n_train: int = 32, n_test: int = 8,
              kinds: Iterable[str] | None = None) -> ListTaskSource:
    """``n_train`` + ``n_test`` tasks of each kind, identical for identical arguments.

    Args:
        seed: Seeds every kind's draws.
        n_train: Train tasks per kind.
        n_test: Test tasks per kind.
        kinds: Which kinds (default: all of :data:`~toolgym.envs.web.kinds.KINDS`).

    Raises:
        ConfigError: an unknown kind, or a negative count.

    Example:
        >>> source = web_tasks(n_train=2, n_test=1, kinds=["click-button", "counter"])
        >>> len(source), source.ids()[:2]
        (6, ['web-click-button-train-000', 'web-counter-train-000'])
    """
    chosen = tuple(KINDS) if kinds is None else tuple(kinds)
    for kind in chosen:
        if kind not in KINDS:
            close = difflib.get_close_matches(kind, KINDS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"Unknown web task kind {kind!r}.{hint} Kinds: {sorted(KINDS)}.")
    if n_train < 0 or n_test < 0:
        raise ConfigError(f"n_train and n_test must be >= 0; got {n_train}, {n_test}.")
    return ListTaskSource(_generate(seed, n_train, n_test, chosen))


@cache
def _generate(seed: int, n_train: int, n_test: int, kinds: tuple[str, ...]) -> tuple[Task, ...]:
    per_kind = {kind: _draw(seed, kind, n_train, n_test) for kind in kinds}
    ordered = []
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(n):  # round robin, so that any stride through the ids meets every kind
            ordered += [_task(per_kind[kind][split][i], split, i) for kind in kinds]
    return tuple(ordered)


def _draw(seed: int, kind: str, n_train: int, n_test: int) -> dict[str, list[Draft]]:
    rng = random.Random(f"toolgym-web:{seed}:{kind}")
    wanted = {"train": n_train, "test": n_test}
    chosen: dict[str, list[Draft]] = {"train": [], "test": []}
    seen: set[str] = set()
    for _ in range(200 * (n_train + n_test) + 100):
        if all(len(chosen[s]) >= wanted[s] for s in chosen):
            return chosen
        draft = KINDS[kind](rng)
        split = split_of(draft.prompt)
        if draft.prompt not in seen and len(chosen[split]) < wanted[split]:
            seen.add(draft.prompt)
            chosen[split].append(draft)
    raise ConfigError(f"Could not draw {n_train} train and {n_test} test distinct {kind!r} tasks; "
                      "ask for fewer.")


def _task(draft: Draft, split: str, index: int) -> Task:
    return Task(
        id=f"web-{draft.kind}-{split}-{index:03d}",
        prompt=draft.prompt,
        data={"kind": draft.kind, "params": draft.params, "url": page_url(draft.kind, draft.params),
              "oracle": draft.oracle, "wrong": draft.wrong, "hacks": draft.hacks},
        split=split,
        metadata={"kind": draft.kind},
    )
