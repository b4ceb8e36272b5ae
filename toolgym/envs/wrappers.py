"""Budgets that truncate an episode, with async twins.

Gymnasium's ``TimeLimit`` serves sync users of ``gymnasium.make``; it knows
nothing of ``astep``. :class:`Budget` is the same turn limit for both paths,
plus an optional token budget, and it is what :func:`toolgym.envs.make_async`
applies. Either way ``truncated`` (a limit outside the task) stays separate
from ``terminated`` (the task ended). A truncated episode is over: stepping it
again raises, as stepping a terminated :class:`~toolgym.envs.base.ToolEnv` does,
instead of running more tool calls past the budget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium

from toolgym._sync import run_sync
from toolgym.envs.outcome import Outcome
from toolgym.errors import ToolgymError


def count_chars_as_tokens(text: str) -> int:
    """A tokenizer-free estimate: about four characters per token."""
    return (len(text) + 3) // 4


class Budget(gymnasium.Wrapper[str, str, str, str]):
    """Truncate after ``max_turns`` steps or ``max_tokens`` tokens of actions and observations.

    Raises:
        ToolgymError: from ``step``/``astep`` after this wrapper truncated the
            episode, until the next reset.

    Example:
        >>> env = Budget(gymnasium.make("toolgym/HumanEval-v0", max_episode_steps=-1),
        ...              max_turns=8)  # doctest: +SKIP
    """

    def __init__(
        self,
        env: gymnasium.Env[str, str],
        *,
        max_turns: int | None = None,
        max_tokens: int | None = None,
        count_tokens: Callable[[str], int] = count_chars_as_tokens,
    ) -> None:
        super().__init__(env)
        self.max_turns = max_turns
        self.max_tokens = max_tokens
        self.count_tokens = count_tokens
        self.turns = 0
        self.tokens = 0
        self.truncated_by: str | None = None
        """"turns" or "tokens" once this wrapper ended the episode; None before."""

    async def areset(self, **kwargs: Any) -> tuple[str, dict[str, Any]]:
        obs, info = await self.env.unwrapped.areset(**kwargs)  # type: ignore[attr-defined]
        self.turns, self.tokens = 0, self.count_tokens(obs)
        self.truncated_by = None
        return obs, info

    async def astep(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self.truncated_by is not None:
            raise ToolgymError(f"The episode was truncated (its {self.truncated_by} budget ran "
                               "out): call reset() first.")
        obs, reward, terminated, truncated, info = await self.env.unwrapped.astep(action)  # type: ignore[attr-defined]
        return self._limit(action, obs, reward, terminated, truncated, info)

    def reset(self, **kwargs: Any) -> tuple[str, dict[str, Any]]:
        return run_sync(self.areset(**kwargs))

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        return run_sync(self.astep(action))

    async def aclose(self) -> None:
        await self.env.unwrapped.aclose()  # type: ignore[attr-defined]

    def _limit(self, action: str, obs: str, reward: float, terminated: bool, truncated: bool,
               info: dict[str, Any]) -> tuple[str, float, bool, bool, dict[str, Any]]:
        self.turns += 1
        self.tokens += self.count_tokens(action) + self.count_tokens(obs)
        over_turns = self.max_turns is not None and self.turns >= self.max_turns
        over_tokens = self.max_tokens is not None and self.tokens >= self.max_tokens
        if not (terminated or truncated) and (over_turns or over_tokens):
            truncated = True
            self.truncated_by = "turns" if over_turns else "tokens"
            info = {**info, "outcome": Outcome.TRUNCATED, "truncated_by": self.truncated_by}
        return obs, reward, terminated, truncated, info
