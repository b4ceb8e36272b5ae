"""Budgets that truncate an episode, with async twins.

Gymnasium's ``TimeLimit`` serves sync users of ``gymnasium.make``; it knows
nothing of ``astep``. :class:`Budget` is the same turn limit for both paths,
plus an optional token budget, and it is what :func:`toolgym.envs.make_async`
applies. Either way ``truncated`` (a limit outside the task) stays separate
from ``terminated`` (the task ended). A truncated episode is over: stepping it
again raises, as stepping a terminated :class:`~toolgym.envs.base.ToolEnv` does,
instead of running more tool calls past the budget.

Budget steps the env beneath it (``self.env``), not ``env.unwrapped``, so it
composes: any wrapper with async twins between it and the env runs too.
Gymnasium's own wrappers are sync only; wrap the bare env instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import gymnasium

from toolgym._sync import run_sync
from toolgym.envs.outcome import Outcome
from toolgym.envs.step import AsyncEnv, StepInfo
from toolgym.errors import ToolgymError
from toolgym.tools import Action


def count_chars_as_tokens(text: str) -> int:
    """A tokenizer-free estimate: about four characters per token."""
    return (len(text) + 3) // 4


class Budget(gymnasium.Wrapper[str, str, str, str]):
    """Truncate after ``max_turns`` steps or ``max_tokens`` tokens of actions and observations.

    Raises:
        ToolgymError: ``env`` has no async twins (e.g. a gymnasium wrapper); from
            ``step``/``astep`` after this wrapper truncated the episode, until the
            next reset.

    Example:
        >>> from toolgym.envs.keychain.env import KeyChainEnv
        >>> env = Budget(KeyChainEnv(split="train"), max_turns=1)
        >>> _ = env.reset(seed=0)
        >>> _, _, terminated, truncated, info = env.step("get a")
        >>> terminated, truncated, info["truncated_by"]
        (False, True, 'turns')
    """

    def __init__(
        self,
        env: gymnasium.Env[str, str],
        *,
        max_turns: int | None = None,
        max_tokens: int | None = None,
        count_tokens: Callable[[str], int] = count_chars_as_tokens,
    ) -> None:
        if not isinstance(env, AsyncEnv):
            raise ToolgymError(
                f"Budget steps the env beneath it with astep, and {type(env).__name__} has no "
                "async twins (gymnasium's own wrappers are sync only): wrap the bare env, or "
                "make it with toolgym.envs.make_async.")
        super().__init__(env)
        self._inner: AsyncEnv = env
        self.max_turns = max_turns
        self.max_tokens = max_tokens
        self.count_tokens = count_tokens
        self.turns = 0
        self.tokens = 0
        self.truncated_by: str | None = None
        """"turns" or "tokens" once this wrapper ended the episode; None before."""

    async def areset(self, *, seed: int | None = None,
                     options: dict[str, Any] | None = None) -> tuple[str, StepInfo]:
        """Reset the env beneath and the budget's counts."""
        obs, info = await self._inner.areset(seed=seed, options=options)
        self.turns, self.tokens = 0, self.count_tokens(obs)
        self.truncated_by = None
        return obs, info

    async def astep(self, action: Action) -> tuple[str, float, bool, bool, StepInfo]:
        """Step the env beneath, then truncate if a budget ran out."""
        if self.truncated_by is not None:
            raise ToolgymError(f"The episode was truncated (its {self.truncated_by} budget ran "
                               "out): call reset() first.")
        obs, reward, terminated, truncated, info = await self._inner.astep(action)
        return self._limit(action, obs, reward, terminated, truncated, info)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Blocking twin of :meth:`areset`."""
        obs, info = run_sync(self.areset(seed=seed, options=options))
        return obs, cast(dict[str, Any], info)

    def step(self, action: Action) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Blocking twin of :meth:`astep`."""
        obs, reward, terminated, truncated, info = run_sync(self.astep(action))
        return obs, reward, terminated, truncated, cast(dict[str, Any], info)

    async def aclose(self) -> None:
        """Close the env beneath."""
        await self._inner.aclose()

    def _limit(self, action: Action, obs: str, reward: float, terminated: bool, truncated: bool,
               info: StepInfo) -> tuple[str, float, bool, bool, StepInfo]:
        self.turns += 1
        text = action if isinstance(action, str) else str(action.get("content") or "")
        self.tokens += self.count_tokens(text) + self.count_tokens(obs)
        over_turns = self.max_turns is not None and self.turns >= self.max_turns
        over_tokens = self.max_tokens is not None and self.tokens >= self.max_tokens
        if not (terminated or truncated) and (over_turns or over_tokens):
            truncated = True
            self.truncated_by = "turns" if over_turns else "tokens"
            info = {**info, "outcome": Outcome.TRUNCATED, "truncated_by": self.truncated_by}
        return obs, reward, terminated, truncated, info
