"""A sandbox-free text env with a trivially learnable, verifiable reward.

The trainer sees trajectories, never sandboxes, so its end-to-end tests may
run on an env with no sandbox below it (STYLE.md, point 15: fakes only at the
lowest seam). ``Digits``: the reward of the final reply is the share of its
characters that are digits, so a policy improves smoothly from the ~8 % a
random character-level model gets. With ``turns=2`` the env answers the first
reply with an observation ("again"), which makes trajectories multi-turn.

Registered as ``toytest/Digits-v0`` when this module is imported; a training
config reaches it with ``imports: [tests.trainers.toy_env]``.
"""

from __future__ import annotations

from typing import Any

import gymnasium

from toolgym._sync import run_sync
from toolgym.envs.outcome import Outcome
from toolgym.envs.spaces import AnyText
from toolgym.envs.tasks import ListTaskSource, Task

ENV_ID = "toytest/Digits-v0"
MODULE = "tests.trainers.toy_env"


def digit_share(text: str) -> float:
    """Share of digit characters in ``text`` (0 for an empty reply)."""
    return sum(c.isdigit() for c in text) / len(text) if text else 0.0


class DigitsEnv(gymnasium.Env[str, str]):
    """Reply with digits; reward = share of digits in the final reply."""

    def __init__(self, *, turns: int = 1, n_tasks: int = 8) -> None:
        self.tasks = ListTaskSource(
            Task(id=f"t{i}", prompt=f"n{i}", split="train" if i % 4 else "test")
            for i in range(n_tasks))
        self.turns = turns
        self.observation_space = AnyText()
        self.action_space = AnyText()
        self.messages: list[dict[str, Any]] = []
        self.turn = 0
        self.task: Task | None = None

    def task_prompt(self, task: Task) -> str:
        return task.prompt

    def reference_actions(self, task: Task, kind: str = "oracle") -> list[str]:
        reply = "1234" if kind == "oracle" else "abcd"
        return [reply] * self.turns

    def _info(self, **extra: Any) -> dict[str, Any]:
        assert self.task is not None
        return {"task_id": self.task.id, "turn": self.turn, "tools": None,
                "messages": self.messages, "tool_counts": {}, "outcome": None, **extra}

    async def areset(self, *, seed: int | None = None,
                     options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        ids = self.tasks.ids()
        task_id = options.get("task_id", ids[int(self.np_random.integers(len(ids)))])
        self.task = self.tasks.get(task_id)
        self.turn = 0
        self.messages = [{"role": "user", "content": self.task.prompt}]
        return self.task.prompt, self._info(new_messages=list(self.messages))

    async def astep(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        self.turn += 1
        self.messages.append({"role": "assistant", "content": action})
        if self.turn < self.turns:
            new = [{"role": "user", "content": "again"}]
            self.messages.extend(new)
            return "again", 0.0, False, False, self._info(new_messages=new, turn_reward=0.0)
        reward = digit_share(action)
        outcome = Outcome.SUCCESS if reward == 1.0 else Outcome.FAILURE
        return "", reward, True, False, self._info(new_messages=[], turn_reward=reward,
                                                    outcome=outcome)

    async def aclose(self) -> None:
        """Nothing to release."""

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        return run_sync(self.areset(seed=seed, options=options))

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        return run_sync(self.astep(action))


if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="tests.trainers.toy_env:DigitsEnv",
                       max_episode_steps=4)
