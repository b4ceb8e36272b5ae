"""The contract between an env and rollout: ``AsyncEnv`` and the ``StepInfo`` it returns.

Gymnasium's ``reset`` and ``step`` return ``info`` as a plain dict, and its
``check_env``, vector envs and users' code index it by string. So the contract
is a :class:`~typing.TypedDict`, not a dataclass: at run time it *is* that dict
(nothing to convert, wrappers still write ``{**info, ...}``), and to a type
checker every key rollout reads has a name and a type. :func:`step_info` is the
one place an env builds it; wrappers and subclasses only add the optional keys
declared here. :class:`AsyncEnv` is what rollout steps: an env, or a wrapper
chain over one, with async twins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, Protocol, TypedDict, runtime_checkable

from toolgym.envs.outcome import Outcome, Score
from toolgym.tools import Action

__all__ = ["AsyncEnv", "Message", "StepInfo", "step_info"]

Message = dict[str, Any]
"""One OpenAI chat message (``role``, ``content``, maybe ``tool_calls``/``tool_call_id``)."""


class StepInfo(TypedDict):
    """What ``reset`` (turn 0) and ``step`` return as ``info``; rollout reads nothing else.

    Example:
        >>> info = step_info(task_id="t0", turn=0, tools=[], messages=[], new_messages=[])
        >>> info["outcome"] is None, isinstance(info, dict)
        (True, True)
    """

    task_id: str
    turn: int
    """Steps taken this episode (0 after reset)."""
    tools: list[dict[str, object]] | None
    """The tools' OpenAI function schemas, for the chat template (None: no tools)."""
    messages: list[Message]
    """The whole transcript so far (the env's own list: copy it to keep a snapshot)."""
    new_messages: list[Message]
    """The messages this step appended after the action: what the agent sees next."""
    tool_counts: dict[str, int]
    """Tool calls this episode by :class:`~toolgym.tools.ToolStatus` value."""
    outcome: Outcome | None
    """How the episode ended; None while it goes on."""
    turn_reward: NotRequired[float]
    """The reward of this step alone (the final step's is the episode's)."""
    call_form: NotRequired[str]
    """How the action's calls came: ``"native"`` (a message's ``tool_calls``) or ``"text"``."""
    score: NotRequired[Score]
    """The verifier's judgement, on the final step."""
    error: NotRequired[str]
    """What went wrong, on an ``infra_error`` step."""
    infra_slow: NotRequired[bool]
    """On an ``infra_error`` step: a platform step ran out of time (a loaded host, not a
    dead one; :class:`~toolgym.errors.SandboxSlow`), so the run goes on."""
    setup_retries: NotRequired[int]
    """On reset: set-up steps that failed or ran late and were tried again (a browser start)."""
    truncated_by: NotRequired[str]
    """``"turns"`` or ``"tokens"``: the :class:`~toolgym.envs.wrappers.Budget` limit hit."""
    attempt_failed: NotRequired[bool]
    """A failed submission the env lets the agent retry (``CodeRetry``)."""
    screenshot: NotRequired[bytes]
    """A PNG of the page (the Web envs, when asked for)."""


def step_info(*, task_id: str, turn: int, tools: list[dict[str, object]] | None,
              messages: list[Message], new_messages: list[Message],
              tool_counts: Mapping[str, int] | None = None, outcome: Outcome | None = None,
              turn_reward: float | None = None, call_form: str | None = None,
              score: Score | None = None, error: str | None = None) -> StepInfo:
    """The ``info`` of one reset or step; optional keys are present only when given."""
    info = StepInfo(task_id=task_id, turn=turn, tools=tools, messages=messages,
                    new_messages=new_messages, tool_counts=dict(tool_counts or {}),
                    outcome=outcome)
    if turn_reward is not None:
        info["turn_reward"] = turn_reward
    if call_form is not None:
        info["call_form"] = call_form
    if score is not None:
        info["score"] = score
    if error is not None:
        info["error"] = error
    return info


@runtime_checkable
class AsyncEnv(Protocol):
    """An env rollout can play: the async twins of ``reset``, ``step`` and ``close``.

    :class:`~toolgym.envs.base.AsyncTextEnv` (every toolgym env) and
    :class:`~toolgym.envs.wrappers.Budget` are ones; gymnasium's own wrappers
    are sync only, so they are not.
    """

    async def areset(self, *, seed: int | None = None,
                     options: dict[str, Any] | None = None) -> tuple[str, StepInfo]:
        """Start an episode: the first observation and its info."""
        ...

    async def astep(self, action: Action) -> tuple[str, float, bool, bool, StepInfo]:
        """Play one action: observation, reward, terminated, truncated, info."""
        ...

    async def aclose(self) -> None:
        """Release what the env holds."""
        ...
