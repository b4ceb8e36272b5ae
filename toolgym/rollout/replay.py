"""Deterministic replay: the env's state at a turn boundary of a recorded episode.

VinePPO estimates ``V(s_k)`` by sampling continuations from each turn
boundary ``s_k`` of an episode. For a text-only task the state is the token
prefix; for a tool env it is also the sandbox (files written, rows inserted,
pages opened), and that has to be restored before a continuation can start.

Two ways to get it back: snapshot the sandbox at every boundary
(``docker commit`` takes seconds and leaves an image layer, for every turn of
every episode) or *replay*: reset the env with the episode's seed and task
and send its recorded actions again. For deterministic tools replay costs
what the original tool calls cost (milliseconds for a calculator or SQLite),
needs nothing from the sandbox layer, and runs on any sandbox backend.
Replay checks every observation against the recorded one and raises
:class:`~toolgym.errors.ReplayDiverged` at the first difference, so a
non-deterministic tool is reported, never silently used from a wrong state.
"""

from __future__ import annotations

from typing import Any

from toolgym.errors import ReplayDiverged
from toolgym.rollout.trajectory import Trajectory

__all__ = ["replay_to_turn"]


async def replay_to_turn(env: Any, trajectory: Trajectory, turn: int) -> tuple[str, dict[str, Any]]:
    """Reset ``env`` as the episode was reset and replay its first ``turn`` actions.

    Afterwards the env is at the boundary before turn ``turn``: the next
    ``astep`` continues the episode from there.

    Args:
        env: An async env (``areset``/``astep``), e.g. from ``make_async``.
        trajectory: The recorded episode (its ``seed``, ``task_id`` and actions).
        turn: Boundary to stop at, ``0 <= turn < len(trajectory.turns)``.

    Returns:
        ``(observation, info)`` at the boundary, as the env returned them.

    Raises:
        ValueError: ``turn`` is out of range.
        ReplayDiverged: an observation differs from the recorded one, or the
            episode ended before the boundary.
    """
    if not 0 <= turn < len(trajectory.turns):
        raise ValueError(f"replay_to_turn: turn must be in [0, {len(trajectory.turns)}); "
                         f"got {turn}")
    obs, info = await env.areset(seed=trajectory.seed, options={"task_id": trajectory.task_id})
    for k, recorded in enumerate(trajectory.turns[:turn]):
        obs, _, terminated, truncated, info = await env.astep(recorded.action_text)
        if obs != recorded.observation:
            raise ReplayDiverged(trajectory.id, k, recorded.observation, obs)
        if terminated or truncated:
            raise ReplayDiverged(trajectory.id, k, recorded.observation, "<episode ended>")
    return obs, info
