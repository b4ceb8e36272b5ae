"""Trajectories to padded training tensors.

:func:`build_batch` is the one place where episodes become tensors. It drops
what must not be trained on and counts it (``infra_error`` episodes carry no
signal about the policy; turns without exact token ids cannot be scored),
computes advantages (one per trajectory with an outcome estimator from
:mod:`toolgym.trainers.advantages`, or one per turn with a turn-level
estimator from :mod:`toolgym.trainers.turn_advantages`), spreads each over
exactly the action tokens it belongs to, and right-pads the samples. Right
padding keeps every real token at its natural position, so a padded forward
pass gives the same log-probs as an unpadded one (causal attention never looks
right).

    >>> from toolgym.rollout.trajectory import Trajectory, Turn
    >>> t = Trajectory("e", "t", [Turn("a", [5, 6], [-.5, -.5], prompt_ids=[1, 2])],
    ...                final_reward=1.0, group_id="g")
    >>> batch, stats = build_batch([t, t], pad_id=0)
    >>> batch.loss_mask.int().tolist(), stats.trajectories
    ([[0, 0, 1, 1], [0, 0, 1, 1]], 2)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch
from torch import Tensor

from toolgym.rollout.trajectory import Sample, Trajectory
from toolgym.trainers.turn_advantages import broadcast_turns

__all__ = ["AdvantageFn", "Batch", "BatchStats", "TurnAdvantageFn", "build_batch", "group_index",
           "trainable_only"]

AdvantageFn = Callable[[Tensor, Tensor], Tensor]
"""Outcome level: ``fn(rewards[B], group_ids[B]) -> advantages[B]``."""
TurnAdvantageFn = Callable[[Sequence[Trajectory], Tensor], Tensor]
"""Turn level: ``fn(kept_trajectories, group_ids[B]) -> advantages[B, K]``, column ``k``
for each trajectory's ``k``-th turn."""


@dataclass(frozen=True)
class Batch:
    """Padded tensors of ``N`` training samples of width ``T``.

    Attributes:
        input_ids: ``LongTensor[N, T]``, right-padded with the pad id.
        attention_mask: ``LongTensor[N, T]``, 1 on real tokens.
        loss_mask: ``BoolTensor[N, T]``, true on tokens the policy sampled.
        behaviour_logprobs: ``Tensor[N, T]``, the sampler's log-prob of each
            action token (0 elsewhere).
        advantages: ``Tensor[N, T]``, the trajectory's advantage on its action
            tokens, 0 elsewhere.
        rewards: ``Tensor[N]``, the trajectory's final reward, per sample.
        group_ids: ``LongTensor[N]``, integer group of the sample's trajectory.
        traj_index: ``LongTensor[N]``, index of the sample's trajectory in the
            kept trajectories (a trajectory may give several samples).
        turn_index: ``LongTensor[N, T]``, the turn each action token belongs to
            (-1 elsewhere): where a turn ends, for per-turn rewards (PPO).
        old_logprobs: ``Tensor[N, T]``, the proximal (pre-update) policy's
            log-probs, filled in by the trainer before an update that centres
            the ratio on them (TIS) or splits the batch into mini-batches (the
            mismatch metric); else None.
        ref_logprobs: ``Tensor[N, T]``, the reference policy's, when a KL term needs them.
        old_values: ``Tensor[N, T]``, the value head's ``V(s_t)`` before the
            update (PPO's value clipping); None without a critic.
        returns: ``Tensor[N, T]``, the value head's targets (GAE returns); None
            without a critic.
        loss_weights: ``Tensor[N, T]``, each token's weight in its mini-batch's
            loss (:func:`~toolgym.trainers.losses.token_weights`), set by the
            update before it splits the mini-batch into micro-batches.
    """

    input_ids: Tensor
    attention_mask: Tensor
    loss_mask: Tensor
    behaviour_logprobs: Tensor
    advantages: Tensor
    rewards: Tensor
    group_ids: Tensor
    traj_index: Tensor
    turn_index: Tensor | None = None
    old_logprobs: Tensor | None = None
    ref_logprobs: Tensor | None = None
    old_values: Tensor | None = None
    returns: Tensor | None = None
    loss_weights: Tensor | None = None

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def num_action_tokens(self) -> int:
        return int(self.loss_mask.sum())

    def select(self, index: Tensor | Sequence[int]) -> Batch:
        """The samples at ``index``, trimmed to their longest real sequence."""
        idx = torch.as_tensor(index, dtype=torch.long)
        width = int(self.attention_mask[idx].sum(-1).max()) if len(idx) else 0
        taken: dict[str, Any] = {f.name: _take(getattr(self, f.name), idx, width)
                                 for f in fields(self)}
        return Batch(**taken)

    def to(self, device: torch.device | str) -> Batch:
        moved: dict[str, Any] = {f.name: None if getattr(self, f.name) is None
                                 else getattr(self, f.name).to(device) for f in fields(self)}
        return Batch(**moved)


def _take(x: Tensor | None, idx: Tensor, width: int) -> Tensor | None:
    if x is None:
        return None
    return x[idx, :width] if x.dim() == 2 else x[idx]


@dataclass(frozen=True)
class BatchStats:
    """What :func:`build_batch` kept and dropped (counts of trajectories unless noted)."""

    trajectories: int = 0
    samples: int = 0
    """Training sequences made from the kept trajectories."""
    dropped_infra_error: int = 0
    dropped_untrainable: int = 0
    """Turns without token ids (a backend that does not report them)."""
    dropped_no_logprobs: int = 0
    """Ids without one sampler log-prob each (RL needs them; SFT does not ask)."""
    dropped_empty: int = 0
    """No action token at all."""
    truncated_samples: int = 0
    """Samples cut to ``max_length`` (their tail tokens are not trained on)."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def trainable_only(trajectories: Sequence[Trajectory], *, require_logprobs: bool = True,
                   ) -> tuple[list[Trajectory], BatchStats]:
    """Keep the trajectories a trainer may use; count the others by reason.

    With ``require_logprobs`` (RL) a trajectory whose turns lack aligned
    sampler log-probs is dropped too: its ratio would be taken against 0.
    """
    kept: list[Trajectory] = []
    infra = untrainable = no_logprobs = empty = 0
    for t in trajectories:
        if t.outcome == "infra_error":
            infra += 1
        elif not t.trainable:
            untrainable += 1
        elif require_logprobs and not t.has_behaviour_logprobs:
            no_logprobs += 1
        elif t.num_action_tokens == 0:
            empty += 1
        else:
            kept.append(t)
    return kept, BatchStats(len(kept), 0, infra, untrainable, no_logprobs, empty)


def group_index(trajectories: Sequence[Trajectory]) -> Tensor:
    """``LongTensor[B]``: equal integers for equal ``group_id``; a missing id is its own group."""
    ids: dict[str, int] = {}
    out = []
    for i, t in enumerate(trajectories):
        key = t.group_id if t.group_id is not None else f"\0{i}"
        out.append(ids.setdefault(key, len(ids)))
    return torch.tensor(out, dtype=torch.long)


def build_batch(
    trajectories: Sequence[Trajectory],
    *,
    pad_id: int,
    advantage_fn: AdvantageFn | None = None,
    turn_advantage_fn: TurnAdvantageFn | None = None,
    max_length: int | None = None,
    require_logprobs: bool = True,
) -> tuple[Batch, BatchStats]:
    """Drop untrainable trajectories, compute advantages, pad the samples.

    Args:
        trajectories: Episodes, e.g. the flattened groups of ``get_batch``.
        pad_id: Token id for padding (masked out everywhere).
        advantage_fn: ``fn(rewards[B], group_ids[B]) -> advantages[B]`` over the
            *kept* trajectories (so a dropped episode never shifts a baseline);
            None gives advantage 0 (SFT).
        turn_advantage_fn: ``fn(kept, group_ids[B]) -> advantages[B, K]``, one
            advantage per turn, each given to that turn's action tokens only.
            Exclusive with ``advantage_fn``.
        max_length: Cut longer samples to this many tokens.
        require_logprobs: Drop (and count) trajectories without sampler
            log-probs; SFT, which needs none, passes False.

    Returns:
        ``(batch, stats)``. A batch may have 0 samples when everything was dropped.

    Raises:
        ValueError: both ``advantage_fn`` and ``turn_advantage_fn`` were given.
    """
    if advantage_fn is not None and turn_advantage_fn is not None:
        raise ValueError("build_batch: pass advantage_fn or turn_advantage_fn, not both")
    kept, stats = trainable_only(trajectories, require_logprobs=require_logprobs)
    rewards = torch.tensor([t.final_reward for t in kept], dtype=torch.float32)
    groups = group_index(kept)
    max_turns = max((len(t.turns) for t in kept), default=0)
    adv = torch.zeros((len(kept), max_turns))
    if turn_advantage_fn is not None and kept:
        adv = turn_advantage_fn(kept, groups).float()
    elif advantage_fn is not None and kept:
        adv = advantage_fn(rewards, groups).float()[:, None].expand(-1, max_turns)
    rows: list[tuple[int, Sample]] = [(i, s) for i, t in enumerate(kept) for s in t.samples()]
    cut = sum(1 for _, s in rows if max_length is not None and len(s.input_ids) > max_length)
    batch = _pad(rows, adv, rewards, groups, pad_id, max_length)
    return batch, replace(stats, samples=len(rows), truncated_samples=cut)


def _pad(rows: list[tuple[int, Sample]], adv: Tensor, rewards: Tensor, groups: Tensor,
         pad_id: int, max_length: int | None) -> Batch:
    """Right-pad the samples; ``adv`` is ``[B, K]``, per trajectory and turn."""
    n = len(rows)
    width = max((len(s.input_ids) for _, s in rows), default=0)
    width = min(width, max_length) if max_length is not None else width
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    attn = torch.zeros((n, width), dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.bool)
    logp = torch.zeros((n, width), dtype=torch.float32)
    turn = torch.full((n, width), -1, dtype=torch.long)
    for r, (_, s) in enumerate(rows):
        k = min(len(s.input_ids), width)
        ids[r, :k] = torch.tensor(s.input_ids[:k], dtype=torch.long)
        attn[r, :k] = 1
        mask[r, :k] = torch.tensor(s.loss_mask[:k], dtype=torch.bool)
        logp[r, :k] = torch.tensor(s.logprobs[:k], dtype=torch.float32)
        turn[r, :k] = torch.tensor(s.turn_index[:k], dtype=torch.long)
    traj = torch.tensor([i for i, _ in rows], dtype=torch.long)
    return Batch(
        input_ids=ids, attention_mask=attn, loss_mask=mask, behaviour_logprobs=logp,
        advantages=torch.where(mask, broadcast_turns(adv[traj], turn), 0.0),
        rewards=rewards[traj], group_ids=groups[traj], traj_index=traj,
        turn_index=turn,
    )
