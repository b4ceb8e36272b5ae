"""Losses for policy-gradient training: pure functions of tensors, no state.

A ``mask`` (bool or 0/1) is true on policy tokens. Masked positions (padding,
observation tokens) never reach a loss or its gradient, even if they hold
``inf`` or ``nan``: inputs are zeroed there with ``torch.where`` before any
arithmetic (``x * mask`` would turn ``inf * 0`` into ``nan``).

Shapes: ``B`` sequences, ``T`` tokens each, ``V`` vocabulary entries.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal, get_args

import torch
from torch import Tensor

from toolgym.errors import ConfigError

__all__ = [
    "AGG_MODES", "AggMode", "KLKind", "PolicyLossStats", "ValueLossStats", "aggregate",
    "entropy_from_logits", "kl_penalty", "masked_mean", "masked_sum", "policy_loss",
    "ISLevel", "ISMode", "RatioLevel", "importance_weights", "sequence_sums", "token_weights",
    "value_loss",
]  # fmt: skip

AggMode = Literal[
    "token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"
]
AGG_MODES: tuple[AggMode, ...] = get_args(AggMode)
KLKind = Literal["k1", "k2", "k3"]
ISMode = Literal["truncate", "mask"]
ISLevel = Literal["token", "sequence"]
RatioLevel = Literal["token", "sequence"]
LOG_RATIO_CLAMP = 20.0  # |log ratio| is clamped before exp (as in verl): ratios stay finite
KL_CLAMP = 10.0  # k3 is clamped to [0, 10] (verl's low_var_kl)


def _zero_masked(x: Tensor, mask: Tensor) -> Tensor:
    """``x`` where ``mask``, else 0; the gradient at masked positions is exactly 0."""
    return torch.where(mask.bool(), x, torch.zeros((), dtype=x.dtype, device=x.device))


def masked_sum(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Sum of ``x`` over the positions where ``mask`` is true.

    Args:
        x: ``Tensor[*S]``.
        mask: ``Tensor[*S]``, bool or 0/1.
        dim: Dimension to reduce; None reduces everything to a scalar.

    Returns:
        A scalar, or ``x`` with ``dim`` removed.
    """
    kept = _zero_masked(x, mask)
    return kept.sum() if dim is None else kept.sum(dim)


def masked_mean(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Like :func:`masked_sum`, divided by the number of valid positions.

    Where no position is valid the mean is 0, not ``nan``, so a batch whose
    trajectories were all dropped gives a zero loss and a zero gradient.
    """
    count = masked_sum(torch.ones_like(x), mask, dim)
    return masked_sum(x, mask, dim) / count.clamp(min=1)


def sequence_sums(x: Tensor, mask: Tensor, seq_index: Tensor | None = None) -> Tensor:
    """For each row, the sum of ``x`` over ``mask`` in every row of its sequence.

    Args:
        x: ``Tensor[B, T]``.
        mask: ``Tensor[B, T]``, bool or 0/1.
        seq_index: ``LongTensor[B]``; rows with equal values are one sequence
            (a trajectory split into one row per turn). Default: each row.

    Returns:
        ``Tensor[B]``: row ``b`` holds the total of its whole sequence.
    """
    rows = masked_sum(x, mask, -1)
    if seq_index is None or len(rows) == 0:
        return rows
    seq = torch.unique(seq_index, return_inverse=True)[1]
    totals = torch.zeros(int(seq.max()) + 1, dtype=rows.dtype, device=rows.device)
    return totals.index_add(0, seq, rows)[seq]


def token_weights(
    mask: Tensor,
    mode: AggMode = "token-mean",
    *,
    seq_index: Tensor | None = None,
    max_tokens: int | None = None,
) -> Tensor:
    """Per-token weights ``w`` with ``sum(w * loss)`` the :func:`aggregate` of ``loss``.

    Computed once over a whole mini-batch and then sliced into micro-batches,
    they make gradient accumulation exact: the micro-batch losses add up to
    the mini-batch's, whatever the micro-batch size (every count, and
    Dr.GRPO's constant, is the mini-batch's, not the micro-batch's padded width).

    Args:
        mask: ``Tensor[B, T]``, bool or 0/1.
        mode: One of :data:`AGG_MODES`.
        seq_index: ``LongTensor[B]``, which sequence each row belongs to; rows
            with equal values are one sequence (a trajectory that a template
            rewriting history split into one row per turn). Default: each row.
        max_tokens: The constant of ``seq-mean-token-sum-norm`` (default ``T``).

    Returns:
        ``Tensor[B, T]`` (float32), 0 where ``mask`` is false.

    Raises:
        ConfigError: ``mode`` is unknown.
    """
    if mode not in AGG_MODES:
        raise ConfigError(f"Unknown loss aggregation mode {mode!r}; valid: {', '.join(AGG_MODES)}.")
    if mask.dim() != 2:
        raise ValueError(f"token_weights: expected a mask [B, T]; got {tuple(mask.shape)}")
    valid = mask.bool()
    w = valid.to(torch.float32)
    if mode == "token-mean":
        return w / valid.sum().clamp(min=1)
    tokens = sequence_sums(w, valid, seq_index)
    rows = torch.arange(len(valid), device=valid.device) if seq_index is None else seq_index
    n_seq = torch.unique(rows[tokens > 0]).numel() or 1
    if mode == "seq-mean-token-mean":
        per_row = 1.0 / tokens.clamp(min=1)
    elif mode == "seq-mean-token-sum":
        per_row = torch.ones(len(valid), device=valid.device)
    else:
        per_row = torch.full((len(valid),), 1.0 / (max_tokens or valid.shape[-1]),
                             device=valid.device)
    return w * (per_row / n_seq)[:, None]


def aggregate(
    loss_per_token: Tensor,
    mask: Tensor,
    mode: AggMode = "token-mean",
    *,
    weights: Tensor | None = None,
    seq_index: Tensor | None = None,
    max_tokens: int | None = None,
) -> Tensor:
    """Reduce a ``[B, T]`` per-token loss to a scalar, named as in verl.

    - ``"token-mean"``: sum over all valid tokens / their number. Every token
      weighs the same (DAPO's token-level loss; verl's default).
    - ``"seq-mean-token-mean"``: per-sequence token mean, then mean over
      sequences: GRPO as published (DeepSeekMath eq. 3), which Dr.GRPO shows
      favours short correct and long wrong answers.
    - ``"seq-mean-token-sum"``: per-sequence token sum, then mean over
      sequences: REINFORCE's sum of log-probabilities.
    - ``"seq-mean-token-sum-norm"``: per-sequence token sum / the constant
      ``max_tokens`` (default ``T``), then mean over sequences: Dr.GRPO. (verl
      divides the batch total by ``T``, skipping the mean over sequences.)

    The "seq-mean" modes average over sequences with at least one valid token,
    so empty rows (dropped trajectories) neither add nor dilute. A sequence is
    a row, or the rows of one ``seq_index`` value (a trajectory).

    Args:
        loss_per_token: ``Tensor[B, T]``.
        mask: ``Tensor[B, T]``, bool or 0/1.
        mode: One of :data:`AGG_MODES`.
        weights: From :func:`token_weights` over a larger batch these rows are
            part of (gradient accumulation); then ``mode``, ``seq_index`` and
            ``max_tokens`` are not used.
        seq_index: See :func:`token_weights`.
        max_tokens: The constant of ``seq-mean-token-sum-norm``.

    Returns:
        A scalar tensor.

    Raises:
        ConfigError: ``mode`` is unknown.
    """
    if loss_per_token.dim() != 2 or mask.shape != loss_per_token.shape:
        raise ValueError(
            f"aggregate: expected loss and mask [B, T]; got {tuple(loss_per_token.shape)} "
            f"and {tuple(mask.shape)}"
        )
    if weights is None:
        weights = token_weights(mask, mode, seq_index=seq_index, max_tokens=max_tokens)
    return masked_sum(_zero_masked(loss_per_token, mask) * weights, mask)


@dataclass(frozen=True)
class _Stats:
    """Detached scalar tensors (no device sync to compute); floats on demand."""

    def as_floats(self) -> dict[str, float]:
        """Return the stats as ``{name: float}`` for a logger."""
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class PolicyLossStats(_Stats):
    """Diagnostics of one :func:`policy_loss` call; shares are over valid tokens.

    Attributes:
        clip_fraction: Share where the clipped PPO term was the one taken.
        dual_clip_fraction: Share capped by the dual clip.
        approx_kl: Mean k3 estimate of KL(old || new), ``(r - 1) - log r`` (CleanRL).
        ratio_mean: Mean of ``r = pi / pi_old`` (GSPO: of the sequence ratio ``s``).
        ratio_max: Largest ``r`` or ``s`` (0 when no token is valid).
        tis_weight_mean: Mean importance weight behaviour->old (1 without TIS).
        tis_clip_fraction: Share whose importance weight hit ``tis_cap`` (truncated, or
            masked to 0).
    """

    clip_fraction: Tensor
    dual_clip_fraction: Tensor
    approx_kl: Tensor
    ratio_mean: Tensor
    ratio_max: Tensor
    tis_weight_mean: Tensor
    tis_clip_fraction: Tensor


def _check_policy_args(
    clip_low: float, clip_high: float, dual_clip: float | None, tis: bool, tis_cap: float | None
) -> None:
    if not 0.0 <= clip_low < 1.0 or clip_high < 0.0:
        raise ConfigError(f"Need 0 <= clip_low < 1 and clip_high >= 0; got {clip_low}, {clip_high}")
    if dual_clip is not None and dual_clip <= 1.0:
        raise ConfigError(f"dual_clip must be > 1 (typically 3); got {dual_clip}.")
    if tis != (tis_cap is not None):
        raise ConfigError(
            "Pass behaviour_logprobs and tis_cap together (use tis_cap=float('inf') for an "
            "untruncated weight), or neither."
        )


def policy_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = None,
    agg_mode: AggMode = "token-mean",
    behaviour_logprobs: Tensor | None = None,
    tis_cap: float | None = None,
    is_mode: ISMode = "truncate",
    is_level: ISLevel = "token",
    ratio_level: RatioLevel = "token",
    seq_index: Tensor | None = None,
    weights: Tensor | None = None,
) -> tuple[Tensor, PolicyLossStats]:
    """The clipped PPO surrogate, with clip-higher, dual clip, decoupled IS and GSPO.

    Per token, with ``r = exp(logprobs - old_logprobs)``::

        loss_t = max(-A r, -A clip(r, 1 - clip_low, 1 + clip_high))      (PPO)
        loss_t = min(loss_t, -A * dual_clip)     where A < 0            (dual clip)
        loss_t = w_t * loss_t                    with behaviour_logprobs (TIS)

    ``clip_high > clip_low`` is DAPO's "clip-higher": rare tokens with A > 0
    may grow further, which keeps entropy up. The dual clip (Ye et al. 2020;
    verl's ``clip_ratio_c``) caps the loss of an A < 0 token whose ratio blew
    up at ``dual_clip * |A|``, with zero gradient there.

    Decoupled PPO (Hilton et al. 2022; AReaL's staleness-enhanced PPO) for
    async rollouts: ``behaviour_logprobs`` come from the sampler, possibly
    versions old; ``old_logprobs`` are the *proximal* policy's, recomputed by
    the trainer before the update. The trust region is centred on the proximal
    policy; the detached ``w = min(pi_prox / pi_behav, tis_cap)`` corrects
    the sampling distribution, truncated as in TIS (Yao et al. 2025). AReaL
    drops tokens above the cap instead.

    ``ratio_level="sequence"`` is GSPO (Zheng et al. 2025): every token of a
    sequence takes the sequence's ratio ``s = exp(mean_t log r_t)`` over its
    valid tokens (the geometric mean of its token ratios, length-normalised so
    that one clip range fits every length), and the sequence is clipped as a
    whole. It is written in the GSPO-token form, ``s_t = sg[s] * pi_t /
    sg[pi_t]``: the value is ``s`` and the gradient ``s * grad log pi_t``, so
    with ``seq-mean-token-mean`` the gradient is the paper's ``-mean_i A_i s_i
    mean_t grad log pi_{i,t}`` (unclipped sequences), and a token-level
    advantage would still reach its own token. GSPO's clip range is small (the
    paper: ``clip_low=3e-4``, ``clip_high=4e-4``). The rows of a sequence must
    all be in this call (``seq_index``).

    Args:
        logprobs: ``Tensor[B, T]``, taken tokens under the current policy (grad).
        old_logprobs: ``Tensor[B, T]``, the ratio's reference: the rollout
            policy, or the proximal one with TIS. Detached.
        advantages: ``Tensor[B, T]``, or ``Tensor[B]`` broadcast over tokens; detached.
        mask: ``Tensor[B, T]``, bool or 0/1; true on policy tokens.
        clip_low: Lower clip ``epsilon_low``.
        clip_high: Upper clip ``epsilon_high``.
        dual_clip: The constant ``c > 1`` of the dual clip; None disables it.
        agg_mode: How per-token losses become a scalar; see :func:`aggregate`.
        behaviour_logprobs: ``Tensor[B, T]`` log-probs of the sampling policy.
        tis_cap: Truncation of the importance weight; goes with ``behaviour_logprobs``.
        is_mode: ``"truncate"`` (TIS) or ``"mask"`` (MIS) at ``tis_cap``; see
            :func:`importance_weights`.
        is_level: ``"token"`` or ``"sequence"`` weights.
        ratio_level: ``"token"`` (PPO) or ``"sequence"`` (GSPO) ratio and clipping.
        seq_index: ``LongTensor[B]``, which sequence each row belongs to, for the
            sequence-level ratio and importance weights (see :func:`token_weights`).
        weights: Passed to :func:`aggregate` (gradient accumulation).

    Returns:
        ``(loss, stats)``: a scalar to minimise and :class:`PolicyLossStats`.

    Raises:
        ConfigError: a clip is out of range, ``tis_cap`` comes without its logprobs, or
            an unknown ``ratio_level``.
    """
    _check_policy_args(clip_low, clip_high, dual_clip, behaviour_logprobs is not None, tis_cap)
    valid = mask.bool()
    if advantages.dim() == 1:
        advantages = advantages[:, None].expand_as(logprobs)
    adv = _zero_masked(advantages.detach(), valid)
    logp = _zero_masked(logprobs, valid)
    log_ratio = logp - _zero_masked(old_logprobs.detach(), valid)
    ratio_log = log_ratio
    if ratio_level == "sequence":
        mean_log = (sequence_sums(log_ratio.detach(), valid, seq_index)
                    / sequence_sums(torch.ones_like(logp), valid, seq_index).clamp(min=1))
        ratio_log = mean_log.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)[:, None] + (
            logp - logp.detach())  # GSPO-token: value s, gradient s * grad log pi_t
    elif ratio_level != "token":
        raise ConfigError(f"Unknown ratio level {ratio_level!r}; valid: 'token', 'sequence'.")
    ratio = torch.exp(ratio_log.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))
    unclipped = -adv * ratio
    clipped = -adv * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    per_token = torch.maximum(unclipped, clipped)
    dual_capped = torch.zeros_like(valid)
    if dual_clip is not None:
        cap = -adv * dual_clip
        dual_capped = (adv < 0) & (per_token > cap) & valid
        per_token = torch.where(dual_capped, cap, per_token)
    weight, tis_hit = torch.ones_like(per_token), torch.zeros_like(valid)
    if behaviour_logprobs is not None and tis_cap is not None:
        weight = importance_weights(behaviour_logprobs, old_logprobs, tis_cap, mask=valid,
                                    mode=is_mode, level=is_level, seq_index=seq_index)
        hit = weight >= tis_cap if is_mode == "truncate" else weight == 0
        per_token, tis_hit = per_token * weight, hit & valid
    loss = aggregate(per_token, valid, agg_mode, weights=weights)
    flags = (clipped > unclipped, dual_capped, tis_hit)
    return loss, _policy_stats(valid, ratio, log_ratio, weight, flags)


@torch.no_grad()
def _policy_stats(
    valid: Tensor, ratio: Tensor, log_ratio: Tensor, weight: Tensor, flags: tuple[Tensor, ...]
) -> PolicyLossStats:
    clipped, dual_capped, tis_hit = (masked_mean(f.to(ratio.dtype), valid) for f in flags)
    return PolicyLossStats(
        clip_fraction=clipped,
        dual_clip_fraction=dual_capped,
        approx_kl=masked_mean(torch.expm1(log_ratio.clamp(max=LOG_RATIO_CLAMP)) - log_ratio,
                              valid),
        ratio_mean=masked_mean(ratio, valid),
        ratio_max=_zero_masked(ratio, valid).max(),
        tis_weight_mean=masked_mean(weight, valid),
        tis_clip_fraction=tis_hit,
    )


def importance_weights(
    behaviour_logprobs: Tensor,
    proximal_logprobs: Tensor,
    cap: float,
    *,
    mask: Tensor | None = None,
    mode: ISMode = "truncate",
    level: ISLevel = "token",
    seq_index: Tensor | None = None,
) -> Tensor:
    """Detached importance weights ``pi_prox / pi_behav``, truncated or masked at ``cap``.

    Corrects for a stale or numerically different sampler: an async rollout
    worker versions behind (AReaL), or vLLM probabilities that differ from the
    trainer's (Yao et al. 2025; verl's ``rollout_is``). ``level="token"``
    weighs each token by its own ratio; ``"sequence"`` gives every token of a
    sequence (a row, or the rows of one ``seq_index`` value) the product of the
    sequence's ratios (``exp`` of the summed log ratios over ``mask``).
    ``mode="truncate"`` caps the weight at ``cap`` (TIS); ``"mask"`` keeps it
    where it is at most ``cap`` and sets it to 0 above, dropping the token or
    sequence (MIS).

    Args:
        behaviour_logprobs: ``Tensor[B, T]`` (or ``[*S]`` at token level) under the sampler.
        proximal_logprobs: Same shape, under the policy corrected to (the
            proximal / old policy of the PPO ratio).
        cap: The threshold, > 0 (TIS uses 2).
        mask: ``Tensor[B, T]``, true on the tokens that count; required for
            ``level="sequence"``.
        mode: ``"truncate"`` or ``"mask"``.
        level: ``"token"`` or ``"sequence"``.
        seq_index: ``LongTensor[B]``, the sequence of each row (see :func:`token_weights`).

    Returns:
        ``Tensor`` of the input's shape, detached, in ``[0, cap]``.

    Raises:
        ConfigError: ``cap`` is not positive, or an unknown mode or level.
    """
    if not cap > 0:
        raise ConfigError(f"The importance-weight cap must be > 0; got {cap}.")
    if mode not in get_args(ISMode) or level not in get_args(ISLevel):
        raise ConfigError(f"Unknown importance sampling {mode!r} / {level!r}; valid modes: "
                          f"{get_args(ISMode)}, levels: {get_args(ISLevel)}.")
    log_w = proximal_logprobs.detach() - behaviour_logprobs.detach()
    if mask is not None:
        log_w = _zero_masked(log_w, mask)
    if level == "sequence":
        if mask is None:
            raise ConfigError("Sequence-level importance weights need the mask.")
        log_w = sequence_sums(log_w, mask, seq_index)[:, None].expand_as(log_w)
    w = torch.exp(log_w.clamp(max=LOG_RATIO_CLAMP))
    return w.clamp(max=cap) if mode == "truncate" else torch.where(w <= cap, w, 0.0)


def kl_penalty(
    logprobs: Tensor, ref_logprobs: Tensor, kind: KLKind = "k3", *, mask: Tensor | None = None
) -> Tensor:
    """Per-token estimate of KL(pi || pi_ref) from tokens sampled from pi.

    J. Schulman's estimators ("Approximating KL Divergence"), ``d = ref - logp``:
    ``"k1"`` = ``-d``: unbiased, can be negative; its expected gradient is 0
    (``E_pi[grad log pi] = 0``), so it belongs in the reward (InstructGPT),
    never in the loss. ``"k2"`` = ``d**2 / 2``: biased, but its gradient
    ``-d grad log pi`` is, in expectation, the gradient of KL(pi || pi_ref)
    (verl's ``mse``). ``"k3"`` = ``exp(d) - d - 1``: unbiased, non-negative, 0
    where the two agree (GRPO, DeepSeekMath eq. 4; verl's ``low_var_kl``),
    clamped at :data:`KL_CLAMP` as verl does; its own gradient would be that of
    KL(pi_ref || pi), so it is returned in straight-through form: k3's value,
    k2's gradient (verl's ``k3+``).

    Args:
        logprobs: ``Tensor[*S]`` under the current policy (carries the gradient).
        ref_logprobs: ``Tensor[*S]`` under the frozen reference policy.
        kind: ``"k1"``, ``"k2"`` or ``"k3"``.
        mask: Optional ``Tensor[*S]``; masked positions give 0 with 0 gradient.

    Returns:
        ``Tensor[*S]``; aggregate it with :func:`aggregate` or :func:`masked_mean`.

    Raises:
        ConfigError: ``kind`` is unknown.
    """
    if kind not in get_args(KLKind):
        raise ConfigError(f"Unknown KL estimator {kind!r}; valid: 'k1', 'k2', 'k3'.")
    if mask is not None:
        logprobs, ref_logprobs = _zero_masked(logprobs, mask), _zero_masked(ref_logprobs, mask)
    d = ref_logprobs.detach() - logprobs
    if kind == "k1":
        return -d
    k2 = 0.5 * d.square()
    if kind == "k2":
        return k2
    k3 = (torch.expm1(d) - d).clamp(max=KL_CLAMP)
    return k2 + (k3 - k2).detach()


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy of the softmax distribution over the last dimension.

    ``-sum_v p_v log p_v`` via ``log_softmax``. Entries masked to ``-inf``
    (top-k, constrained decoding) add 0, with no ``nan`` in value or gradient.

    Args:
        logits: ``Tensor[*S, V]``.

    Returns:
        ``Tensor[*S]`` in nats.
    """
    logp = torch.log_softmax(logits, dim=-1)
    logp = logp.masked_fill(torch.isneginf(logp), 0.0)  # p = 0 there: 0 * log 0 := 0
    return -(logp.exp() * logp).sum(-1)


@dataclass(frozen=True)
class ValueLossStats(_Stats):
    """Diagnostics of one :func:`value_loss` call."""

    clip_fraction: Tensor
    """Share of valid tokens where the clipped value error was the larger one."""


def value_loss(
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    *,
    clip: float | None = None,
    agg_mode: AggMode = "token-mean",
    weights: Tensor | None = None,
) -> tuple[Tensor, ValueLossStats]:
    """Squared-error critic loss, optionally with PPO value clipping.

    ``0.5 * (V - R)**2``; with ``clip``, ``0.5 * max((V - R)**2, (V_c - R)**2)``,
    ``V_c = V_old + clip(V - V_old, -clip, clip)`` (baselines PPO2, CleanRL).

    Args:
        values: ``Tensor[B, T]`` current critic outputs (carry the gradient).
        old_values: ``Tensor[B, T]`` critic outputs at rollout time.
        returns: ``Tensor[B, T]`` targets, e.g. from :func:`~toolgym.trainers.advantages.gae`.
        mask: ``Tensor[B, T]``, bool or 0/1.
        clip: Half-width of the value trust region; None disables clipping.
        agg_mode: See :func:`aggregate`.
        weights: Passed to :func:`aggregate` (gradient accumulation).

    Returns:
        ``(loss, stats)``.
    """
    valid = mask.bool()
    v = _zero_masked(values, valid)
    target = _zero_masked(returns.detach(), valid)
    err = (v - target).square()
    per_token = err
    if clip is not None:
        old = _zero_masked(old_values.detach(), valid)
        v_clipped = old + (v - old).clamp(-clip, clip)
        per_token = torch.maximum(err, (v_clipped - target).square())
    loss = 0.5 * aggregate(per_token, valid, agg_mode, weights=weights)
    with torch.no_grad():
        frac = masked_mean((per_token > err).to(err.dtype), valid)
    return loss, ValueLossStats(clip_fraction=frac)
