"""One policy update on a batch: micro-batches, gradient accumulation, clipped surrogate.

For each mini-batch (``num_mini_batches`` optimiser steps per epoch, whole
trajectories shuffled with the trainer's own generator), the log-probs of the batch's
tokens are recomputed under the current policy one micro-batch at a time and
the loss is accumulated with per-token weights computed over the *whole
mini-batch* (:func:`~toolgym.trainers.losses.token_weights`: its token and
trajectory counts, Dr.GRPO's constant ``config.norm_tokens``), so the sum of
the micro-batch losses is exactly the loss of the whole mini-batch (and its
gradient too), whatever the micro-batch size. A sequence-level ratio (GSPO,
``ratio_level: sequence``) or importance weight needs all of a trajectory's
rows at once, so then a micro-batch never splits a trajectory. A batch too small for
``num_mini_batches`` still advances the LR schedule by the planned steps.

Log-probs are those of the distribution the sampler drew from (temperature,
top-p; :mod:`toolgym.agents.sampling`); the old (proximal) and reference
log-probs are computed in eval mode, as the sampler's are.

Per token the loss is PPO's clipped surrogate against the rollout's behaviour
log-probs (:func:`~toolgym.trainers.losses.policy_loss`), plus ``kl_coef``
times a KL estimate to the reference policy, minus ``entropy_coef`` times the
entropy. With ``tis_cap`` the update is decoupled PPO: the ratio is taken
against the policy as it was before this update (the proximal policy), and
the behaviour/proximal gap is corrected by a truncated importance weight
(AReaL, TIS), which is what stale asynchronous rollouts need.

With a :class:`ValueTerm` (PPO) the same forward pass also yields the last
hidden state; the value head reads it and ``coef`` times the (clipped) value
loss against ``batch.returns`` joins the loss, so one backward pass and one
optimiser step train the policy and its critic together.

Everything here reads an :class:`UpdateConfig`, the update's own section of a
trainer config (``TrainerConfig.update``), so this module needs nothing of the
trainer: not its config, not the rollout side that config describes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any, Literal, TypedDict

import torch
from torch import Tensor

from toolgym.trainers.batching import Batch
from toolgym.trainers.logprobs import token_logprobs, token_logprobs_and_hidden
from toolgym.trainers.losses import (
    AggMode,
    ISLevel,
    ISMode,
    KLKind,
    RatioLevel,
    aggregate,
    kl_penalty,
    masked_sum,
    policy_loss,
    token_weights,
    value_loss,
)
from toolgym.trainers.policy import Policy

__all__ = ["UpdateConfig", "ValueTerm", "evaluating", "index_chunks", "kl_in_reward",
           "mismatch_sums", "policy_update", "precompute_logprobs", "recomputes_old",
           "trajectory_chunks", "with_loss_weights"]


@dataclasses.dataclass(frozen=True)
class UpdateConfig:
    """What one policy update reads; a trainer config derives it (``TrainerConfig.update``).

    Each field is the trainer config's field of the same name, where its help
    text is, except four that come from elsewhere in that config:
    ``temperature`` and ``top_p`` (``sampling.*``: how the sampler processed its
    logits, so the trainer's log-probs are of the same distribution),
    ``max_grad_norm`` (``optim.max_grad_norm``; 0 disables the clip) and
    ``norm_tokens`` (Dr.GRPO's constant divisor: ``loss_max_tokens``, else
    ``sampling.max_new_tokens``).

    Example:
        >>> from toolgym.trainers.base import TrainerConfig
        >>> update = TrainerConfig(clip_high=0.28).update
        >>> update.clip_high, update.norm_tokens  # the turn budget of the default sampling
        (0.28, 256)
    """

    micro_batch_size: int
    num_mini_batches: int
    update_epochs: int
    clip_low: float
    clip_high: float
    dual_clip: float | None
    tis_cap: float | None
    is_mode: ISMode
    is_level: ISLevel
    ratio_level: RatioLevel
    recompute_old_logprobs: bool
    loss_agg: AggMode
    norm_tokens: int
    kl_coef: float
    kl_estimator: KLKind
    kl_in: Literal["loss", "reward"]
    entropy_coef: float
    temperature: float
    top_p: float
    max_grad_norm: float


@dataclasses.dataclass(frozen=True)
class ValueTerm:
    """A critic trained in the policy's forward pass (PPO's value head).

    Attributes:
        head: ``hidden[N, T, H] -> values[N, T]``, aligned like the log-probs:
            ``values[:, t]`` is ``V`` of the state in which token ``t`` was chosen.
        coef: Weight of the value loss in the total loss.
        clip: Half-width of PPO's value clipping around ``batch.old_values``; None: off.
    """

    head: Callable[[Tensor], Tensor]
    coef: float
    clip: float | None


def index_chunks(index: Tensor, size: int) -> Iterator[Tensor]:
    """Consecutive slices of ``index`` of at most ``size`` entries (micro-batches)."""
    for start in range(0, len(index), size):
        yield index[start : start + size]


def trajectory_chunks(traj_index: Tensor, size: int) -> Iterator[Tensor]:
    """Row indices in consecutive slices of at most ``size`` rows that never split a
    trajectory (its rows must be consecutive); a trajectory of more rows than ``size`` is
    a slice of its own. For what needs a whole trajectory at once (sequence-level ratios)."""
    n = len(traj_index)
    if n == 0:
        return
    cuts = ((traj_index[1:] != traj_index[:-1]).nonzero()[:, 0] + 1).tolist()
    start = 0
    for lo, hi in zip([0, *cuts], [*cuts, n], strict=True):  # trajectory rows [lo, hi)
        if hi - start > size and lo > start:
            yield torch.arange(start, lo)
            start = lo
    yield torch.arange(start, n)


class Processing(TypedDict):
    """The logit processing keywords of :func:`toolgym.trainers.logprobs.token_logprobs`."""

    temperature: float
    top_p: float


def _processing(config: UpdateConfig) -> Processing:
    """How the sampler processed its logits (see :mod:`toolgym.agents.sampling`)."""
    return {"temperature": config.temperature, "top_p": config.top_p}


@contextlib.contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) for the duration, the previous mode after."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@torch.no_grad()
def precompute_logprobs(policy: Policy, batch: Batch, config: UpdateConfig, *,
                        reference: bool | None = None) -> Batch:
    """Fill ``old_logprobs`` and ``ref_logprobs`` (KL) before the update starts.

    In eval mode: these are the policies' log-probs as the sampler sees them,
    not one dropout draw of them. The old (pre-update) ones are needed when the
    ratio is centred on them (TIS, ``recompute_old_logprobs``), and for the
    sampler/trainer mismatch of a batch split into several mini-batches (after
    the first optimiser step the policy is no longer the one that sampled).
    ``reference`` (default: a KL term in the loss needs them) computes only the
    reference's, for the KL in the reward.
    """
    need_old = (recomputes_old(config) or config.num_mini_batches > 1) and reference is None
    need_ref = _kl_in_loss(config) if reference is None else reference
    if not (need_old or need_ref) or len(batch) == 0:
        return batch
    device, processing = policy.device, _processing(config)
    old = torch.zeros_like(batch.behaviour_logprobs)
    ref = torch.zeros_like(batch.behaviour_logprobs)
    with evaluating(policy.model):
        for idx in index_chunks(torch.arange(len(batch)), config.micro_batch_size):
            mb = batch.select(idx).to(device)
            width = mb.input_ids.shape[1]
            if need_old:
                old[idx, :width] = token_logprobs(policy.model, mb.input_ids, mb.attention_mask,
                                                  **processing)[0].cpu()
            if need_ref:
                with policy.reference() as reference:
                    ref[idx, :width] = token_logprobs(reference, mb.input_ids,
                                                      mb.attention_mask, **processing)[0].cpu()
    return dataclasses.replace(batch, old_logprobs=old if need_old else batch.old_logprobs,
                               ref_logprobs=ref if need_ref else batch.ref_logprobs)


def recomputes_old(config: UpdateConfig) -> bool:
    """Whether the PPO ratio is centred on the trainer's pre-update log-probs."""
    return config.tis_cap is not None or config.recompute_old_logprobs


def _kl_in_loss(config: UpdateConfig) -> bool:
    return config.kl_coef > 0 and config.kl_in == "loss"


def kl_in_reward(batch: Batch, advantage_fn: Callable[[Tensor, Tensor], Tensor],
                 config: UpdateConfig) -> tuple[Batch, float]:
    """Advantages of ``reward - kl_coef * KL`` per trajectory (``kl_in: reward``).

    The KL of a trajectory is the sum over its action tokens of
    ``kl_estimator`` between the sampler's log-probs and ``batch.ref_logprobs``
    (k1: ``log pi - log pi_ref``). Returns the batch with new advantages and
    the mean KL per trajectory.
    """
    assert batch.ref_logprobs is not None
    kl = kl_penalty(batch.behaviour_logprobs, batch.ref_logprobs, config.kl_estimator,
                    mask=batch.loss_mask).detach()
    n = int(batch.traj_index.max()) + 1
    per_traj = torch.zeros(n).index_add(0, batch.traj_index, kl.sum(-1))
    rewards = torch.zeros(n).index_put((batch.traj_index,), batch.rewards)
    groups = torch.zeros(n, dtype=torch.long).index_put((batch.traj_index,), batch.group_ids)
    adv = advantage_fn(rewards - config.kl_coef * per_traj, groups).float()
    advantages = torch.where(batch.loss_mask, adv[batch.traj_index][:, None], 0.0)
    return dataclasses.replace(batch, advantages=advantages), float(per_traj.mean())


def with_loss_weights(mini: Batch, config: UpdateConfig) -> Batch:
    """``mini`` with each token's weight in its loss: counts over the whole mini-batch,
    a "sequence" is a trajectory (``traj_index``), Dr.GRPO divides by ``config.norm_tokens``."""
    weights = token_weights(mini.loss_mask, config.loss_agg, seq_index=mini.traj_index,
                            max_tokens=config.norm_tokens)
    return dataclasses.replace(mini, loss_weights=weights)


def _micro_loss(policy: Policy, mb: Batch, config: UpdateConfig,
                value: ValueTerm | None = None, *,
                first_step: bool = False) -> tuple[Tensor, dict[str, float]]:
    """Loss of one micro-batch (its share of the mini-batch's, by ``mb.loss_weights``) and
    its sums; with ``first_step`` also the sampler/trainer mismatch (the first optimiser
    step of a one-mini-batch update sees the whole batch under the sampling weights)."""
    mask, weights = mb.loss_mask, mb.loss_weights
    kwargs: dict[str, Any] = {**_processing(config), "entropy_mask": mask}
    if value is None:
        logp, entropy = token_logprobs(policy.model, mb.input_ids, mb.attention_mask, **kwargs)
    else:
        logp, entropy, hidden = token_logprobs_and_hidden(policy.model, mb.input_ids,
                                                          mb.attention_mask, **kwargs)
    assert entropy is not None
    old = mb.old_logprobs if recomputes_old(config) else mb.behaviour_logprobs
    assert old is not None, "precompute_logprobs fills old_logprobs when they are recomputed"
    tis = config.tis_cap is not None
    loss, stats = policy_loss(
        logp, old,
        mb.advantages, mask, clip_low=config.clip_low, clip_high=config.clip_high,
        dual_clip=config.dual_clip, agg_mode=config.loss_agg,
        behaviour_logprobs=mb.behaviour_logprobs if tis else None, tis_cap=config.tis_cap,
        is_mode=config.is_mode, is_level=config.is_level, ratio_level=config.ratio_level,
        seq_index=mb.traj_index, weights=weights)
    tokens = float(mask.sum())
    sums = {k: v * tokens for k, v in stats.as_floats().items() if k != "ratio_max"}
    if first_step:
        sums.update(mismatch_sums(logp.detach(), mb.behaviour_logprobs, mask))
    sums["policy_loss"] = float(loss.detach())
    if _kl_in_loss(config):
        assert mb.ref_logprobs is not None
        kl = kl_penalty(logp, mb.ref_logprobs, config.kl_estimator, mask=mask)
        loss = loss + config.kl_coef * aggregate(kl, mask, weights=weights)
        sums["kl_ref"] = float(masked_sum(kl.detach(), mask))
    if config.entropy_coef:
        loss = loss - config.entropy_coef * aggregate(entropy, mask, weights=weights)
    sums["entropy"] = float(masked_sum(entropy.detach(), mask))
    if value is not None:
        assert mb.old_values is not None and mb.returns is not None, "ValueTerm needs returns"
        v_loss, v_stats = value_loss(value.head(hidden), mb.old_values, mb.returns, mask,
                                     clip=value.clip, weights=weights)
        loss = loss + value.coef * v_loss
        sums["value_loss"] = float(v_loss.detach())
        sums["value_clip_fraction"] = float(v_stats.clip_fraction) * tokens
    sums["loss"] = float(loss.detach())
    sums["tokens"] = tokens
    return loss, sums


MISMATCH_MAX = "mismatch_abs_max"


@torch.no_grad()
def mismatch_sums(logprobs: Tensor, behaviour_logprobs: Tensor, mask: Tensor) -> dict[str, float]:
    """Sums over ``mask`` of ``|log pi_trainer - log pi_sampler|`` and of their ratio, the max
    and the count: the sampler/trainer mismatch before any update (1 and 0 when they agree)."""
    valid = mask.bool()
    delta = torch.where(valid, logprobs - behaviour_logprobs, 0.0)
    return {"mismatch_abs_mean": float(delta.abs().sum()),
            "mismatch_ratio_mean": float(torch.where(valid, delta.exp(), 0.0).sum()),
            MISMATCH_MAX: float(delta.abs().max()) if delta.numel() else 0.0,
            "mismatch_tokens": float(valid.sum())}


def _mini_batches(traj_index: Tensor, config: UpdateConfig,
                  generator: torch.Generator) -> Iterator[Tensor]:
    """``update_epochs x num_mini_batches`` row index sets of whole trajectories, shuffled
    (a trajectory's rows together, in order), their numbers of trajectories within one of
    each other; some are empty when there are fewer trajectories than mini-batches."""
    trajs = torch.unique(traj_index)
    rank = torch.zeros(int(trajs.max()) + 1 if len(trajs) else 0, dtype=torch.long)
    for _ in range(config.update_epochs):
        rank[trajs[torch.randperm(len(trajs), generator=generator)]] = torch.arange(len(trajs))
        row_rank = rank[traj_index]
        order = torch.sort(row_rank, stable=True).indices
        for part in torch.arange(len(trajs)).tensor_split(config.num_mini_batches):
            lo, hi = (int(part[0]), int(part[-1]) + 1) if len(part) else (0, 0)
            yield order[(row_rank[order] >= lo) & (row_rank[order] < hi)]


def _micro_batches(mini: Batch, config: UpdateConfig) -> Iterator[Tensor]:
    """Row slices of ``micro_batch_size``; whole trajectories when a sequence-level ratio or
    importance weight needs every row of one at once."""
    size = config.micro_batch_size
    whole = config.ratio_level == "sequence" or (config.tis_cap is not None
                                                 and config.is_level == "sequence")
    if whole:
        return trajectory_chunks(mini.traj_index, size)
    return index_chunks(torch.arange(len(mini)), size)


def policy_update(policy: Policy, optimizer: torch.optim.Optimizer, scheduler: Any,
                  batch: Batch, config: UpdateConfig, generator: torch.Generator, *,
                  value: ValueTerm | None = None) -> dict[str, float]:
    """Run ``update_epochs x num_mini_batches`` optimiser steps on ``batch``.

    Args:
        policy: The policy being trained.
        optimizer: Steps every parameter in its groups (policy, and a value head if any).
        scheduler: Stepped once per optimiser step.
        batch: Samples with advantages (and ``old_values``/``returns`` with ``value``).
        config: Clips, loss aggregation, mini-batching, KL and entropy weights.
        generator: Shuffles the samples into mini-batches.
        value: PPO's critic term; None trains the policy alone.

    Returns:
        Means over tokens (clip fraction, approx. KL to the behaviour policy,
        KL to the reference, entropy, ratio), the mean loss (and value loss)
        per optimiser step, the mean gradient norm (before clipping, over every
        parameter the optimiser steps) and the mean LR.
    """
    batch = precompute_logprobs(policy, batch, config)
    totals: dict[str, float] = defaultdict(float)
    pre_update = batch.old_logprobs  # the whole batch's, before any step: the mismatch from it
    if pre_update is not None:
        totals.update(mismatch_sums(pre_update, batch.behaviour_logprobs, batch.loss_mask))
    params = [p for group in optimizer.param_groups for p in group["params"]]
    steps = 0
    for mini_index in _mini_batches(batch.traj_index, config, generator):
        if len(mini_index) == 0 or not batch.loss_mask[mini_index].any():
            _step_schedule_only(scheduler)  # the LR schedule still ends on its planned step
            continue
        mini = with_loss_weights(batch.select(mini_index), config)
        optimizer.zero_grad(set_to_none=True)
        for idx in _micro_batches(mini, config):
            loss, sums = _micro_loss(policy, mini.select(idx).to(policy.device), config, value,
                                     first_step=steps == 0 and pre_update is None)
            loss.backward()
            for key, amount in sums.items():
                totals[key] = max(totals[key], amount) if key == MISMATCH_MAX else (
                    totals[key] + amount)
        max_norm = config.max_grad_norm or float("inf")
        totals["grad_norm"] += float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        totals["lr"] += float(optimizer.param_groups[0]["lr"])  # the LR this step used
        optimizer.step()
        scheduler.step()
        steps += 1
    return _summarise(totals, steps) if steps else {"optimizer_steps": 0.0}


def _step_schedule_only(scheduler: Any) -> None:
    """Advance the LR schedule for an optimiser step that had nothing to train on."""
    with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()": on purpose
        warnings.filterwarnings("ignore", message=".*lr_scheduler.step.*", category=UserWarning)
        scheduler.step()


def _summarise(totals: dict[str, float], steps: int) -> dict[str, float]:
    tokens = max(1.0, totals.pop("tokens", 0.0))
    first_tokens = max(1.0, totals.pop("mismatch_tokens", 0.0))
    per_step = ("loss", "policy_loss", "value_loss", "grad_norm", "lr")
    out = {k: v / steps for k, v in totals.items() if k in per_step}
    for key, value in totals.items():
        if key == MISMATCH_MAX:
            out[key] = value
        elif key.startswith("mismatch_"):
            out[key] = value / first_tokens
        elif key not in out:
            out[key] = value / tokens
    out["optimizer_steps"] = float(steps)
    return out
