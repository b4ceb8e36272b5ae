"""One policy update on a batch: micro-batches, gradient accumulation, clipped surrogate.

For each mini-batch (``num_mini_batches`` optimiser steps per epoch, samples
shuffled with the trainer's own generator), the log-probs of the batch's
tokens are recomputed under the current policy one micro-batch at a time and
the loss is accumulated with the *mini-batch's* denominator, so the sum of the
micro-batch losses is exactly the loss of the whole mini-batch (and its
gradient too), whatever the micro-batch size.

Per token the loss is PPO's clipped surrogate against the rollout's behaviour
log-probs (:func:`~toolgym.trainers.losses.policy_loss`), plus ``kl_coef``
times a KL estimate to the reference policy, minus ``entropy_coef`` times the
entropy. With ``tis_cap`` the update is decoupled PPO: the ratio is taken
against the policy as it was before this update (the proximal policy), and
the behaviour/proximal gap is corrected by a truncated importance weight
(AReaL, TIS), which is what stale asynchronous rollouts need.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from toolgym.trainers.batching import Batch
from toolgym.trainers.logprobs import token_logprobs
from toolgym.trainers.losses import aggregate, kl_penalty, masked_sum, policy_loss
from toolgym.trainers.policy import Policy

if TYPE_CHECKING:
    from toolgym.trainers.base import TrainerConfig

__all__ = ["policy_update", "precompute_logprobs"]


def _chunks(index: Tensor, size: int) -> Iterator[Tensor]:
    for start in range(0, len(index), size):
        yield index[start : start + size]


def _temperature(config: TrainerConfig) -> float:
    return config.sampling.temperature or 1.0


@torch.no_grad()
def precompute_logprobs(policy: Policy, batch: Batch, config: TrainerConfig) -> Batch:
    """Fill ``old_logprobs`` (TIS) and ``ref_logprobs`` (KL) before the update starts."""
    need_old, need_ref = config.tis_cap is not None, config.kl_coef > 0
    if not (need_old or need_ref) or len(batch) == 0:
        return batch
    device, temp = policy.device, _temperature(config)
    old = torch.zeros_like(batch.behaviour_logprobs)
    ref = torch.zeros_like(batch.behaviour_logprobs)
    for idx in _chunks(torch.arange(len(batch)), config.micro_batch_size):
        mb = batch.select(idx).to(device)
        width = mb.input_ids.shape[1]
        if need_old:
            old[idx, :width] = token_logprobs(policy.model, mb.input_ids, mb.attention_mask,
                                              temperature=temp)[0].cpu()
        if need_ref:
            with policy.reference() as reference:
                ref[idx, :width] = token_logprobs(reference, mb.input_ids, mb.attention_mask,
                                                  temperature=temp)[0].cpu()
    return dataclasses.replace(batch, old_logprobs=old if need_old else None,
                               ref_logprobs=ref if need_ref else None)


def _denominator(mini: Batch, agg_mode: str) -> float:
    """The outer count of ``aggregate`` over the whole mini-batch."""
    if agg_mode == "token-mean":
        return max(1.0, float(mini.loss_mask.sum()))
    return max(1.0, float(mini.loss_mask.any(-1).sum()))


def _micro_loss(policy: Policy, mb: Batch, config: TrainerConfig,
                denominator: float) -> tuple[Tensor, dict[str, float]]:
    """Loss of one micro-batch (already divided by the mini-batch denominator) and its sums."""
    mask = mb.loss_mask
    logp, entropy = token_logprobs(policy.model, mb.input_ids, mb.attention_mask,
                                   temperature=_temperature(config), entropy_mask=mask)
    assert entropy is not None
    tis = config.tis_cap is not None
    loss, stats = policy_loss(
        logp, mb.old_logprobs if tis else mb.behaviour_logprobs, mb.advantages, mask,
        clip_low=config.clip_low, clip_high=config.clip_high, dual_clip=config.dual_clip,
        agg_mode=config.loss_agg, behaviour_logprobs=mb.behaviour_logprobs if tis else None,
        tis_cap=config.tis_cap, denominator=denominator)
    tokens = float(mask.sum())
    sums = {k: v * tokens for k, v in stats.as_floats().items() if k != "ratio_max"}
    sums["policy_loss"] = float(loss.detach())
    if config.kl_coef > 0:
        assert mb.ref_logprobs is not None
        kl = kl_penalty(logp, mb.ref_logprobs, config.kl_estimator, mask=mask)
        loss = loss + config.kl_coef * aggregate(kl, mask, config.loss_agg, denominator=denominator)
        sums["kl_ref"] = float(masked_sum(kl.detach(), mask))
    if config.entropy_coef:
        loss = loss - config.entropy_coef * aggregate(entropy, mask, config.loss_agg,
                                                      denominator=denominator)
    sums["entropy"] = float(masked_sum(entropy.detach(), mask))
    sums["loss"] = float(loss.detach())
    sums["tokens"] = tokens
    return loss, sums


def _mini_batches(n: int, config: TrainerConfig, generator: torch.Generator) -> Iterator[Tensor]:
    for _ in range(config.update_epochs):
        order = torch.randperm(n, generator=generator)
        size = math.ceil(n / config.num_mini_batches)
        yield from _chunks(order, size)


def policy_update(policy: Policy, optimizer: torch.optim.Optimizer, scheduler: Any,
                  batch: Batch, config: TrainerConfig,
                  generator: torch.Generator) -> dict[str, float]:
    """Run ``update_epochs x num_mini_batches`` optimiser steps on ``batch``.

    Returns:
        Means over tokens (clip fraction, approx. KL to the behaviour policy,
        KL to the reference, entropy, ratio), the mean loss per optimiser
        step, the mean gradient norm (before clipping) and the last LR.
    """
    if len(batch) == 0:
        return {"optimizer_steps": 0.0}
    batch = precompute_logprobs(policy, batch, config)
    totals: dict[str, float] = defaultdict(float)
    params = policy.trainable_parameters()
    steps = 0
    for mini_index in _mini_batches(len(batch), config, generator):
        mini = batch.select(mini_index)
        denominator = _denominator(mini, config.loss_agg)
        optimizer.zero_grad(set_to_none=True)
        for idx in _chunks(torch.arange(len(mini)), config.micro_batch_size):
            loss, sums = _micro_loss(policy, mini.select(idx).to(policy.device), config,
                                     denominator)
            loss.backward()
            for key, value in sums.items():
                totals[key] += value
        max_norm = config.optim.max_grad_norm or float("inf")
        totals["grad_norm"] += float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        totals["lr"] += float(optimizer.param_groups[0]["lr"])  # the LR this step used
        optimizer.step()
        scheduler.step()
        steps += 1
    return _summarise(totals, steps)


def _summarise(totals: dict[str, float], steps: int) -> dict[str, float]:
    tokens = max(1.0, totals.pop("tokens", 0.0))
    per_step = ("loss", "policy_loss", "grad_norm", "lr")
    out = {k: v / steps for k, v in totals.items() if k in per_step}
    for key, value in totals.items():
        if key not in out:
            out[key] = value / tokens
    out["optimizer_steps"] = float(steps)
    return out
