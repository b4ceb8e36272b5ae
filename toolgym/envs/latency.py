"""``LatencyEnv``: a stand-in env for rollout tests and benchmarks (no sandbox, no verifier).

It sits beneath what those are about (scheduling, staleness, retries,
throughput), like Gymnasium's ``GenericTestEnv``. Each step sleeps a latency
with a long tail (``tail_s`` with probability ``tail_p``), like real tools; the
answer "good" succeeds. Importing this module registers ``toolgym-test/Latency-v0``.

Faults are injected through class-level counters shared by every instance a
manager makes: ``failures_left`` steps end in ``infra_error``, and
``slow_resets_left`` resets raise :class:`~toolgym.errors.SandboxSlow` (a
set-up step that ran out of time on a loaded host).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import gymnasium

from toolgym.envs.outcome import Outcome
from toolgym.envs.spaces import AnyText
from toolgym.envs.step import Message, StepInfo, step_info
from toolgym.envs.tasks import ListTaskSource, Task
from toolgym.errors import SandboxSlow


class LatencyEnv(gymnasium.Env[str, str]):
    """Episodes of ``turns`` steps; ``infra_failures`` first episodes end in infra_error."""

    failures_left = 0  # class-level: shared by every instance the manager makes
    slow_resets_left = 0

    def __init__(
        self, latency_s: float = 0.0, tail_s: float = 0.0, tail_p: float = 0.0, turns: int = 2,
        seed: int = 0,
    ) -> None:
        self.tasks = ListTaskSource(
            [Task(id=f"t{i}", prompt=f"task {i}", data={}, split="train") for i in range(8)]
        )
        self.latency_s, self.tail_s, self.tail_p, self.turns = latency_s, tail_s, tail_p, turns
        self.observation_space = self.action_space = AnyText()
        self._rng = random.Random(seed)

    async def areset(self, *, seed: int | None = None,
                     options: dict[str, Any] | None = None) -> tuple[str, StepInfo]:
        if LatencyEnv.slow_resets_left > 0:
            LatencyEnv.slow_resets_left -= 1
            raise SandboxSlow("latency-stub", "the stub's set-up ran out of time")
        self.task = self.tasks.get((options or {}).get("task_id", "t0"))
        self.step_count = 0
        self.messages: list[Message] = [{"role": "user", "content": self.task.prompt}]
        return self.task.prompt, self._info(list(self.messages))

    async def astep(self, action: str) -> tuple[str, float, bool, bool, StepInfo]:
        self.step_count += 1
        tail = self._rng.random() < self.tail_p
        await asyncio.sleep(self.latency_s + (self.tail_s if tail else 0.0))
        self.messages.append({"role": "assistant", "content": action})
        if LatencyEnv.failures_left > 0:
            LatencyEnv.failures_left -= 1
            return "", 0.0, False, True, self._info([], Outcome.INFRA_ERROR, error="stub")
        if self.step_count < self.turns:
            obs = {"role": "tool", "name": "t", "content": f"obs {self.step_count}"}
            self.messages.append(obs)
            return obs["content"], 0.0, False, False, self._info([obs])
        good = action.strip() == "good"
        outcome = Outcome.SUCCESS if good else Outcome.FAILURE
        return "", float(good), True, False, self._info([], outcome)

    def _info(self, new: list[Message], outcome: Outcome | None = None,
              error: str | None = None) -> StepInfo:
        return step_info(task_id=self.task.id, turn=self.step_count, tools=[],
                         messages=self.messages, new_messages=new, outcome=outcome, error=error)

    async def aclose(self) -> None:
        pass


gymnasium.register("toolgym-test/Latency-v0", entry_point="toolgym.envs.latency:LatencyEnv")
