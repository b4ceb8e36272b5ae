"""How an episode ended, and what a verifier returns."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Outcome(enum.StrEnum):
    """The typed end of every episode.

    ``infra_error`` episodes (dead sandbox, crashed verifier) carry no signal
    about the policy: trainers drop them, they are never scored 0.
    """

    SUCCESS = "success"
    FAILURE = "failure"
    TRUNCATED = "truncated"
    AGENT_ERROR = "agent_error"
    INFRA_ERROR = "infra_error"


@dataclass(frozen=True)
class Score:
    """A verifier's judgement of a final answer.

    Example:
        >>> Score(1.0, passed=True).outcome
        <Outcome.SUCCESS: 'success'>
    """

    reward: float
    passed: bool
    details: Mapping[str, Any] = field(default_factory=dict)
    """Verifier-specific facts (test output, expected answer …), shown in reports."""

    @property
    def outcome(self) -> Outcome:
        return Outcome.SUCCESS if self.passed else Outcome.FAILURE


def episode_outcome(terminated: bool, truncated: bool, info: Mapping[str, Any]) -> Outcome | None:
    """The outcome of a step: the env's own verdict, else ``truncated``, else None (ongoing).

    Wrappers such as gymnasium's ``TimeLimit`` set ``truncated`` without
    knowing about outcomes; this fills the gap.
    """
    if info.get("outcome") is not None:
        return Outcome(info["outcome"])
    if truncated:
        return Outcome.TRUNCATED
    return None
