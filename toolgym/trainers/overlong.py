"""DAPO's overlong handling for turns cut by the token budget (``max_new_tokens``).

A turn that used up its budget ends with ``finish_reason == "length"``: its
action was cut off, so the episode's reward says as much about the budget as
about the policy (a sound line of reasoning cut mid-way scores like a wrong
one). DAPO (Yu et al. 2025, section 3.4) offers two remedies, both here:

- **Overlong filtering**: an episode with a cut turn keeps its reward in its
  group's baseline, but none of its tokens is trained on
  (:func:`filter_overlong`).
- **Soft overlong punishment**: a length-aware penalty added to the reward
  for training, 0 up to ``budget - buffer`` tokens, then falling linearly to
  ``-factor`` at the budget (:func:`soft_overlong_penalty`). An episode
  takes its worst turn's penalty, so its reward moves by at most ``factor``
  however many turns it has, as a single-turn DAPO response's does.

Both act on what the trainer trains on: the episodes' recorded rewards (and
the reward metrics) stay the environment's.

    >>> soft_overlong_penalty(90, budget=100, buffer=20)
    -0.5
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from toolgym.rollout.trajectory import Trajectory
from toolgym.trainers.batching import Batch

__all__ = ["cut_by_budget", "filter_overlong", "punish_overlong", "soft_overlong_penalty"]


def soft_overlong_penalty(length: int, *, budget: int, buffer: int, factor: float = 1.0) -> float:
    """DAPO's soft overlong punishment (eq. 13) of one action of ``length`` tokens.

    Args:
        length: Tokens the action has.
        budget: The most it may have (``max_new_tokens``).
        buffer: ``L_cache``: the penalty grows over the last ``buffer`` tokens
            of the budget; 0 gives no penalty.
        factor: The penalty at (and beyond) the budget is ``-factor``.

    Returns:
        A reward offset in ``[-factor, 0]``.
    """
    over = length - (budget - buffer)
    if buffer <= 0 or over <= 0:
        return 0.0
    return -factor * min(over, buffer) / buffer


def cut_by_budget(trajectory: Trajectory) -> bool:
    """Whether a turn of ``trajectory`` ended at its token budget (``finish_reason="length"``)."""
    return any(turn.finish_reason == "length" for turn in trajectory.turns)


def punish_overlong(trajectories: Sequence[Trajectory], *, budget: int, buffer: int,
                    factor: float) -> tuple[list[Trajectory], float]:
    """Copies of ``trajectories`` whose ``final_reward`` carries the soft overlong penalty.

    Each episode takes the penalty of its longest turn. The originals are
    untouched (their turns and ``info`` are shared with the copies).

    Returns:
        ``(copies, mean penalty per episode)``.
    """
    out, total = [], 0.0
    for t in trajectories:
        penalty = min((soft_overlong_penalty(len(turn.action_ids or ()), budget=budget,
                                             buffer=buffer, factor=factor)
                       for turn in t.turns), default=0.0)
        total += penalty
        out.append(dataclasses.replace(t, final_reward=t.final_reward + penalty))
    return out, total / len(out) if out else 0.0


def filter_overlong(batch: Batch, kept: Sequence[Trajectory]) -> tuple[Batch, int]:
    """``batch`` without a loss on the samples of episodes cut by the budget.

    Args:
        batch: A training batch whose ``traj_index`` indexes ``kept``.
        kept: The trajectories the batch was built from, after
            :func:`~toolgym.trainers.batching.trainable_only`.

    Returns:
        ``(batch, number of episodes filtered)``; their advantages are already
        computed (their rewards stay in the baselines), only their loss mask is cleared.
    """
    cut = torch.tensor([cut_by_budget(t) for t in kept], dtype=torch.bool)
    if len(batch) == 0 or not cut.any():
        return batch, int(cut.sum())
    rows = cut[batch.traj_index][:, None]
    mask = batch.loss_mask & ~rows
    return dataclasses.replace(batch, loss_mask=mask,
                               advantages=torch.where(mask, batch.advantages, 0.0)), int(cut.sum())
