"""KeyChain-v0's exact episodes, pinned: observations, rewards, flags and ``info``.

The credit-assignment benchmark and the trainer tests train on KeyChain-v0, so
a change to what its episodes show changes their token streams and numbers.
``data/keychain_episodes.json`` holds what the env produced for a set of
scripted episodes (bare, Hermes and native calls, wrong and unknown keys,
malformed calls, the turn budget, a seeded draw) and for the SFT
demonstrations; this test replays them and compares every field. Regenerate
the file only for an intended change, and say so in the commit:
``python tests/envs/test_keychain_pinned.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import random
from pathlib import Path
from typing import Any

import toolgym  # noqa: F401 - registers the envs
from toolgym.envs import make_async
from toolgym.envs.keychain import chain_actions, demonstration, keychain_tasks, simulate
from toolgym.envs.keychain.demos import call

GOLDEN = Path(__file__).parent / "data" / "keychain_episodes.json"
ENV_ID = "toolgym/KeyChain-v0"


def _native(*calls: tuple[str, str], content: str | None = None) -> dict[str, Any]:
    """An OpenAI assistant message with ``tool_calls`` (id, raw arguments)."""
    return {"role": "assistant", "content": content, "tool_calls": [
        {"id": cid, "type": "function", "function": {"name": "get", "arguments": args}}
        for cid, args in calls]}


def scripts(task: Any) -> dict[str, list[Any]]:
    """Named action sequences for one task; each is played from a reset on that task."""
    keys, answer = chain_actions(task), task.data["answer"]
    wrong_key = next(k for k in "abcdefgh" if k not in keys)
    other = str((int(answer) + 1) % 10)
    return {
        "success bare": [call(k) for k in keys] + [answer],
        "success hermes": [call(k, hermes=True) for k in keys] + [f"it is {answer}"],
        "two calls in one message": [call(keys[0], hermes=True) + call(keys[1], hermes=True),
                                     call(keys[2]), f"<think>{other}</think> {answer}"],
        "wrong lookup": [call(wrong_key), "get z", call("zz", hermes=True), other],
        "malformed calls": ['<tool_call>{"name": "get"}</tool_call>',
                            '<tool_call>{"name": "put", "arguments": {"key": "a"}}</tool_call>',
                            "<tool_call>{nope</tool_call>", "get", ""],
        "native tool_calls": [_native(("c0", json.dumps({"key": keys[0]}))),
                              _native(("c1", json.dumps({"key": keys[1]})),
                                      ("c2", json.dumps({"key": keys[2]})), content="two"),
                              _native(("x1", "{"), ("x2", "{}")),
                              {"role": "assistant", "content": answer}],
        "truncation": [call(keys[0])] * 6,
        "digits only": ["0123456789"],
    }


def _plain(value: Any) -> Any:
    """``value`` as JSON types (scores as dicts, outcomes as their strings)."""
    def default(o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        if isinstance(o, enum.Enum):
            return o.value
        raise TypeError(type(o))
    return json.loads(json.dumps(value, default=default))


async def _episode(env: Any, task_id: str, actions: list[Any]) -> dict[str, Any]:
    """One episode: each step without the transcript and tools (the same for every step),
    which are kept once, from the last step."""
    obs, info = await env.areset(options={"task_id": task_id})
    steps: list[tuple[Any, ...]] = [(obs, info)]
    for action in actions:
        steps.append(await env.astep(action))
        if steps[-1][2] or steps[-1][3]:
            break
    last = steps[-1][-1]
    return _plain({
        "steps": [(*s[:-1], {k: v for k, v in s[-1].items() if k not in ("messages", "tools")})
                  for s in steps],
        "one transcript": all(s[-1]["messages"] is last["messages"] for s in steps),
        "one tool list": all(s[-1]["tools"] == last["tools"] for s in steps),
        "messages": last["messages"],
        "tools": last["tools"],
    })


async def record() -> dict[str, Any]:
    """Play every script on two tasks, a seeded draw, and the SFT demonstrations."""
    env = make_async(ENV_ID)
    out: dict[str, Any] = {"episodes": {}}
    try:
        for task_id in ("kc-train-0000", "kc-train-0007"):
            task = env.unwrapped.tasks.get(task_id)
            for name, actions in scripts(task).items():
                out["episodes"][f"{task_id} {name}"] = await _episode(env, task_id, actions)
        out["seeded resets"] = _plain([await env.areset(seed=s) for s in (0, 3, 11)])
    finally:
        await env.aclose()
    tasks = list(keychain_tasks(n_train=40, n_test=0))
    rng = random.Random(0)
    out["demonstrations"] = _plain([dataclasses.asdict(demonstration(t, rng)) for t in tasks])
    out["simulate"] = _plain([simulate(t, ["get z", call("a", hermes=True), "1"])
                              for t in tasks[:5]])
    return out


async def test_keychain_episodes_match_the_pinned_record():
    expected = json.loads(GOLDEN.read_text())
    got = await record()
    assert got.keys() == expected.keys()
    for name in expected["episodes"]:
        assert got["episodes"][name] == expected["episodes"][name], name
    assert got == expected


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(asyncio.run(record()), indent=1, sort_keys=True) + "\n")
