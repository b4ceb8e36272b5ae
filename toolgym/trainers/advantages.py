"""Advantage estimators: pure functions of tensors, no state, no I/O.

Outcome-level estimators turn one scalar reward per trajectory into one
advantage per trajectory (``Tensor[B] -> Tensor[B]``); the trainer spreads it
over the policy tokens with :func:`broadcast_to_tokens`. :func:`gae` works per
token against a learned critic. Every estimator treats its inputs as fixed
targets: they are detached, so no gradient can leak into the critic or the
reward through an advantage.

Pick one by config string through :func:`get_advantage_estimator`; add one
with :func:`register_advantage_estimator`. Turn-level estimators have a
registry of the same kind (:class:`EstimatorRegistry`), filled the same way by
:func:`~toolgym.trainers.turn_level.register_turn_estimator`::

    >>> import torch
    >>> fn = get_advantage_estimator("rloo")
    >>> fn(torch.tensor([1.0, 0.0]), torch.tensor([7, 7])).tolist()
    [1.0, -1.0]
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import torch
from torch import Tensor

from toolgym.errors import ConfigError
from toolgym.registry import Registry

__all__ = [
    "ADVANTAGE_ESTIMATORS",
    "AdvantageEstimator",
    "EstimatorRegistry",
    "RegisteredEstimator",
    "lookup_advantage_estimator",
    "broadcast_to_tokens",
    "gae",
    "get_advantage_estimator",
    "grpo_advantages",
    "register_advantage_estimator",
    "reinforce_pp_advantages",
    "rloo_advantages",
    "whiten",
]


def _as_float(x: Tensor) -> Tensor:
    """Detach ``x`` and give it a floating dtype (int/bool rewards are common)."""
    x = x.detach()
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def _check_outcome_inputs(rewards: Tensor, group_ids: Tensor) -> None:
    if rewards.dim() != 1 or group_ids.shape != rewards.shape:
        raise ValueError(
            f"rewards and group_ids must both be 1-D of the same length [B]; got "
            f"{tuple(rewards.shape)} and {tuple(group_ids.shape)}"
        )


def _group_sums(rewards: Tensor, group_ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-element group size, group sum and group mean, each ``Tensor[B]``.

    Group ids may be any integers (not necessarily ``0..G-1``, not sorted).
    """
    unique_ids, inverse = torch.unique(group_ids, return_inverse=True)
    zeros = rewards.new_zeros(unique_ids.numel())
    count = zeros.index_add(0, inverse, torch.ones_like(rewards))[inverse]
    total = zeros.index_add(0, inverse, rewards)[inverse]
    return count, total, total / count


def grpo_advantages(
    rewards: Tensor,
    group_ids: Tensor,
    *,
    eps: float = 1e-6,
    scale: Literal["group", "none"] = "group",
) -> Tensor:
    """Group-relative advantages of GRPO (DeepSeekMath) or Dr.GRPO.

    ``A_i = (r_i - mean_g) / (std_g + eps)`` with ``scale="group"`` (GRPO,
    DeepSeekMath sec. 4.1.2; TRL/verl/SkyRL default), where ``std_g`` is the
    *unbiased* group standard deviation, as ``torch.std`` computes it in those
    frameworks. ``scale="none"`` drops the division, ``A_i = r_i - mean_g``:
    Dr.GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training") shows
    that dividing by the std up-weights groups that are nearly all right or
    all wrong.

    A group of one has no baseline and gets advantage 0 (verl instead passes
    its raw reward through). A group whose rewards are all equal gets 0: it
    carries no learning signal.

    Args:
        rewards: ``Tensor[B]``, one scalar reward per trajectory.
        group_ids: ``Tensor[B]`` of integers; trajectories sampled from the same
            prompt share an id. Ids need not be contiguous or sorted.
        eps: Added to the std so all-equal groups divide 0 by ``eps``.
        scale: ``"group"`` (GRPO) or ``"none"`` (Dr.GRPO).

    Returns:
        ``Tensor[B]``, floating; sums to ~0 within each group.

    Raises:
        ConfigError: ``scale`` is not ``"group"`` or ``"none"``.
        ValueError: the shapes differ or are not 1-D.
    """
    if scale not in ("group", "none"):
        raise ConfigError(f"grpo_advantages: scale must be 'group' or 'none', got {scale!r}")
    rewards = _as_float(rewards)
    _check_outcome_inputs(rewards, group_ids)
    count, _, mean = _group_sums(rewards, group_ids)
    centred = rewards - mean
    if scale == "none":
        return centred
    _, sq_dev_sum, _ = _group_sums(centred.square(), group_ids)
    std = (sq_dev_sum / (count - 1).clamp(min=1)).sqrt()
    return centred / (std + eps)


def rloo_advantages(rewards: Tensor, group_ids: Tensor) -> Tensor:
    """REINFORCE Leave-One-Out advantages (Ahmadian et al. 2024, "Back to Basics").

    ``A_i = r_i - (sum_{j in g, j != i} r_j) / (n_g - 1)``: each sample's
    baseline is the mean of the *other* samples of its prompt, so the baseline
    does not depend on the sample and the estimator stays unbiased. Equal to
    ``n/(n-1) * (r_i - mean_g)``. A group of one has no other sample and gets 0.

    Args:
        rewards: ``Tensor[B]``, one scalar reward per trajectory.
        group_ids: ``Tensor[B]`` of integers, shared by samples of one prompt.

    Returns:
        ``Tensor[B]``, floating; sums to 0 within each group.

    Raises:
        ValueError: the shapes differ or are not 1-D.
    """
    rewards = _as_float(rewards)
    _check_outcome_inputs(rewards, group_ids)
    count, total, _ = _group_sums(rewards, group_ids)
    baseline = (total - rewards) / (count - 1).clamp(min=1)
    return torch.where(count > 1, rewards - baseline, torch.zeros_like(rewards))


def whiten(x: Tensor, mask: Tensor | None = None, *, eps: float = 1e-6) -> Tensor:
    """Normalise ``x`` to zero mean and unit std over its valid entries.

    ``(x - mean) / (std + eps)``, with the unbiased std over the entries where
    ``mask`` is true (all entries when ``mask`` is None), as verl's
    ``masked_whiten`` and the GRPO estimator here do. Masked entries come out 0.
    With fewer than two valid entries the result is 0.

    Args:
        x: ``Tensor[*S]`` of any shape.
        mask: ``Tensor[*S]``, bool or 0/1; None means every entry is valid.
        eps: Added to the std.

    Returns:
        ``Tensor[*S]``.
    """
    x = _as_float(x)
    valid = torch.ones_like(x, dtype=torch.bool) if mask is None else mask.bool()
    if valid.shape != x.shape:
        raise ValueError(f"mask shape {tuple(valid.shape)} != x shape {tuple(x.shape)}")
    n = valid.sum()
    mean = torch.where(valid, x, 0.0).sum() / n.clamp(min=1)
    centred = torch.where(valid, x - mean, 0.0)
    std = (centred.square().sum() / (n - 1).clamp(min=1)).sqrt()
    return centred / (std + eps)


def reinforce_pp_advantages(
    rewards: Tensor, group_ids: Tensor | None = None, *, eps: float = 1e-6
) -> Tensor:
    """REINFORCE++ advantages (Hu 2025): a batch baseline and a batch scale.

    Variant implemented: outcome reward only, no KL folded into the reward,
    one entry per trajectory. ``A_i = (r_i - mean_B) / (std_B + eps)`` with the
    mean and unbiased std over the whole batch, i.e. :func:`whiten` of the
    rewards. The paper (and OpenRLHF) whitens *per token*, which weighs long
    trajectories more; to get that, broadcast first and whiten the tokens:
    ``whiten(broadcast_to_tokens(rewards, mask), mask)``.

    Args:
        rewards: ``Tensor[B]``, one scalar reward per trajectory.
        group_ids: Ignored. Accepted so that every outcome estimator of the
            registry can be called as ``fn(rewards, group_ids)``.
        eps: Added to the std.

    Returns:
        ``Tensor[B]`` with mean 0 over the batch.
    """
    del group_ids
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D [B]; got {tuple(rewards.shape)}")
    return whiten(rewards, eps=eps)


def broadcast_to_tokens(advantages: Tensor, loss_mask: Tensor) -> Tensor:
    """Give every policy token of a trajectory the trajectory's advantage.

    Args:
        advantages: ``Tensor[B]``, one advantage per trajectory.
        loss_mask: ``Tensor[B, T]``, bool or 0/1; 1 on policy (action) tokens.

    Returns:
        ``Tensor[B, T]``: ``advantages[b]`` where ``loss_mask[b, t]``, else 0.
    """
    if advantages.dim() != 1 or loss_mask.dim() != 2 or loss_mask.shape[0] != advantages.shape[0]:
        raise ValueError(
            f"expected advantages [B] and loss_mask [B, T]; got {tuple(advantages.shape)} "
            f"and {tuple(loss_mask.shape)}"
        )
    adv = _as_float(advantages)
    return torch.where(loss_mask.bool(), adv[:, None], 0.0)


def gae(
    rewards: Tensor,
    values: Tensor,
    mask: Tensor,
    *,
    gamma: float,
    lam: float,
    terminated: Tensor,
    bootstrap_values: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Token-level Generalised Advantage Estimation (Schulman et al. 2016).

    Each row is one episode. Its steps are the positions where ``mask`` is
    true, in order: the policy tokens. Masked positions (padding, and the
    observation tokens spliced in between turns) are skipped, not treated as
    steps. The value that follows the last policy token of a turn is the value
    at the first policy token of the next turn, read after the observation
    arrived, as in verl's multi-turn GAE. Rewards at masked positions are
    ignored, so put a turn's reward on its last policy token.

    After the last step the recursion bootstraps the way CleanRL and torchrl
    (``generalized_advantage_estimate(..., done, terminated)``) do. A
    terminated episode (the task ended) has next value 0. A truncated one (a
    turn, token or time budget ran out) has next value ``bootstrap_values[b]``,
    the critic's value of the state after its last token. Treating truncation
    as termination would teach the critic that running out of budget is worth 0.

    ``delta_t = r_t + gamma * V_next - V_t``,
    ``A_t = delta_t + gamma * lam * A_next``, ``returns = A + V``.

    Args:
        rewards: ``Tensor[B, T]`` per-token rewards.
        values: ``Tensor[B, T]`` critic values ``V(s_t)`` at each token.
        mask: ``Tensor[B, T]``, bool or 0/1; true on the steps (policy tokens).
        gamma: Discount per step (policy token).
        lam: GAE lambda; 1 gives Monte-Carlo returns minus V, 0 gives TD(0).
        terminated: ``Tensor[B]`` bool; true where the episode ended by
            termination, false where it was truncated.
        bootstrap_values: ``Tensor[B]``, the value after the last step; read
            only for rows that are not terminated. May be None when every row
            is terminated.

    Returns:
        ``(advantages, returns)``, each ``Tensor[B, T]``, 0 at masked positions.

    Raises:
        ValueError: the shapes disagree, or a row is truncated and
            ``bootstrap_values`` is None.
    """
    _check_gae_inputs(rewards, values, mask, terminated, bootstrap_values)
    rewards = _as_float(rewards)
    values = _as_float(values).to(rewards.dtype)
    valid = mask.bool()
    ended = terminated.bool()
    if bootstrap_values is None:
        next_value = torch.zeros_like(rewards[:, 0])
    else:
        next_value = torch.where(ended, 0.0, _as_float(bootstrap_values).to(rewards.dtype))
    next_adv = torch.zeros_like(next_value)
    advantages = torch.zeros_like(rewards)
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        adv_t = delta + gamma * lam * next_adv
        step = valid[:, t]
        advantages[:, t] = torch.where(step, adv_t, 0.0)
        next_value = torch.where(step, values[:, t], next_value)
        next_adv = torch.where(step, adv_t, next_adv)
    returns = torch.where(valid, advantages + values, 0.0)
    return advantages, returns


def _check_gae_inputs(
    rewards: Tensor,
    values: Tensor,
    mask: Tensor,
    terminated: Tensor,
    bootstrap_values: Tensor | None,
) -> None:
    if rewards.dim() != 2 or values.shape != rewards.shape or mask.shape != rewards.shape:
        raise ValueError(
            "gae: rewards, values and mask must all be [B, T]; got "
            f"{tuple(rewards.shape)}, {tuple(values.shape)}, {tuple(mask.shape)}. "
            "A [B, T+1] values tensor is not accepted: pass its last column as "
            "bootstrap_values only if it really holds each row's next-state value."
        )
    batch = (rewards.shape[0],)
    if terminated.shape != batch:
        raise ValueError(f"gae: terminated must be [B]={batch}; got {tuple(terminated.shape)}")
    if bootstrap_values is None:
        if not bool(terminated.bool().all()):
            raise ValueError(
                "gae: some rows are truncated (terminated=False) but bootstrap_values is None; "
                "pass the critic's value of the state after each row's last token, or mark "
                "the rows terminated if the task really ended."
            )
    elif bootstrap_values.shape != batch:
        raise ValueError(
            f"gae: bootstrap_values must be [B]={batch}; got {tuple(bootstrap_values.shape)}"
        )


class AdvantageEstimator(StrEnum):
    """Names of the built-in advantage estimators, as they appear in trainer configs.

    Every estimator except ``gae`` is outcome-level: its registry function is
    called as ``fn(rewards[B], group_ids[B]) -> Tensor[B]``. ``gae`` needs a
    critic: ``fn(rewards[B,T], values[B,T], mask[B,T], gamma=, lam=,
    terminated=, bootstrap_values=) -> (advantages, returns)``. More names come
    from :func:`register_advantage_estimator`.
    """

    GRPO = "grpo"
    DRGRPO = "drgrpo"
    RLOO = "rloo"
    REINFORCE_PP = "reinforce_pp"
    GAE = "gae"

    @property
    def needs_critic(self) -> bool:
        """Whether this estimator needs critic values (only GAE does)."""
        return self is AdvantageEstimator.GAE


@dataclass(frozen=True)
class RegisteredEstimator:
    """One registry entry: the function and what a trainer must check before using it."""

    fn: Callable[..., Any]
    grouped: bool
    """Its baseline comes from the other episodes of a group (``rollout.group_size >= 2``)."""
    needs_critic: bool = False
    """It reads critic values (``gae``; turn level: the turn critic), so a trainer without
    one refuses it."""
    continuations: bool = False
    """Turn level: it reads Monte-Carlo returns of continuations sampled from every turn
    boundary before the update (VinePPO), so the rollout source must continue episodes."""


class EstimatorRegistry(Registry[RegisteredEstimator]):
    """Estimators by config name, with a did-you-mean for unknown ones.

    There are two, filled and read alike: :data:`ADVANTAGE_ESTIMATORS`
    (outcome level, ``fn(rewards[B], group_ids[B]) -> Tensor[B]``) and
    :data:`~toolgym.trainers.turn_level.TURN_ESTIMATORS` (turn level,
    ``fn(TurnInputs) -> Tensor[B, K]``).

    Example:
        >>> registry = EstimatorRegistry("demo")
        >>> registry.add("zero", RegisteredEstimator(lambda r, g: 0 * r, grouped=False))
        >>> registry.lookup("zeroo")
        Traceback (most recent call last):
        ...
        toolgym.errors.ConfigError: Unknown demo 'zeroo'. Did you mean 'zero'? Valid names: zero.
    """

    def __init__(self, kind: str) -> None:
        # Registering the same function again updates its flags; another one clashes.
        super().__init__(kind, identity=lambda entry: entry.fn)


ADVANTAGE_ESTIMATORS = EstimatorRegistry("advantage estimator")
"""The outcome-level registry; add to it with :func:`register_advantage_estimator`."""


def register_advantage_estimator(name: str, fn: Callable[..., Any], *, grouped: bool = True,
                                 needs_critic: bool = False) -> None:
    """Make ``fn`` selectable by ``name`` wherever a config names an outcome estimator.

    That is ``advantage_estimator`` of GRPO-family trainers and, for grouped
    ones, ``episode_estimator`` / ``step_estimator`` of GiGPO; one registration
    serves both.

    Args:
        name: The config string.
        fn: ``fn(rewards[B], group_ids[B]) -> Tensor[B]``, pure (no state, no I/O).
        grouped: Whether ``fn`` compares the episodes of a group (then configs need
            ``rollout.group_size >= 2`` and GiGPO may use it per step group).
        needs_critic: Only for critic-based estimators like ``gae``, which
            outcome-level trainers refuse.

    Raises:
        ConfigError: ``name`` is taken by another function.
    """
    ADVANTAGE_ESTIMATORS.add(name, RegisteredEstimator(fn, grouped, needs_critic))


register_advantage_estimator("grpo", grpo_advantages)
register_advantage_estimator("drgrpo", functools.partial(grpo_advantages, scale="none"))
register_advantage_estimator("rloo", rloo_advantages)
register_advantage_estimator("reinforce_pp", reinforce_pp_advantages, grouped=False)
register_advantage_estimator("gae", gae, grouped=False, needs_critic=True)


def lookup_advantage_estimator(name: str) -> RegisteredEstimator:
    """The registry entry of ``name``.

    Raises:
        ConfigError: ``name`` is not registered; the message lists the valid names.
    """
    return ADVANTAGE_ESTIMATORS.lookup(name)


def get_advantage_estimator(name: str) -> Callable[..., Any]:
    """Return the estimator function registered under ``name``.

    Args:
        name: A config string such as ``"grpo"`` (or an :class:`AdvantageEstimator`).

    Returns:
        The function; see :class:`AdvantageEstimator` for its call signature.

    Raises:
        ConfigError: ``name`` is not registered; the message lists the valid names.
    """
    return lookup_advantage_estimator(name).fn
