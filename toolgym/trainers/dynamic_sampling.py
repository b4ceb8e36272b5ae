"""DAPO's dynamic sampling: train only on the groups whose rewards differ.

A group whose episodes all scored the same (all solved, or none) gives each of
them a group-relative advantage of 0 (GRPO, Dr.GRPO, RLOO): it costs a
forward and backward pass, teaches nothing, and with a token-mean loss dilutes
the weight of the groups that do teach. DAPO (Yu et al. 2025, section 3.2)
drops such groups and samples more until the batch is full. Here a step drops
them, and asks the rollout source for as many groups as it is short, up to
``resample_rounds`` times; after that it trains on the groups it has.

Which groups are mixed is decided on the environment's rewards (DAPO's
accuracy), before any overlong penalty (:mod:`~toolgym.trainers.overlong`).
"""

from __future__ import annotations

from toolgym.rollout.trajectory import Trajectory
from toolgym.trainers.metrics import group_is_mixed
from toolgym.trainers.protocols import RolloutSource

__all__ = ["draw_mixed_groups"]

Groups = list[list[Trajectory]]


async def draw_mixed_groups(source: RolloutSource, num_groups: int, *,
                            resample_rounds: int = 0) -> tuple[Groups, Groups, dict[str, float]]:
    """Up to ``num_groups`` groups with differing rewards from ``source.get_batch``.

    Args:
        source: Where the groups come from (``await source.get_batch(n)``).
        num_groups: Groups a step trains on.
        resample_rounds: Further ``get_batch`` calls, each for the groups still
            missing, when too few of the first draw were mixed.

    Returns:
        ``(kept, drawn, metrics)``: the mixed groups (at most ``num_groups``),
        every group drawn (for the rollout metrics), and
        ``dynamic_groups_dropped`` / ``dynamic_resample_rounds``.
    """
    drawn = list(await source.get_batch(num_groups))
    kept = [g for g in drawn if group_is_mixed(g)]
    rounds = 0
    while len(kept) < num_groups and rounds < resample_rounds:
        more = list(await source.get_batch(num_groups - len(kept)))
        rounds += 1
        drawn += more
        kept += [g for g in more if group_is_mixed(g)][: num_groups - len(kept)]
    return kept, drawn, {"dynamic_groups_dropped": float(len(drawn) - len(kept)),
                         "dynamic_resample_rounds": float(rounds)}
