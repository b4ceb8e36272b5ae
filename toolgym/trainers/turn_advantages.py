"""Turn-level advantage estimators: pure functions of tensors, no state, no I/O.

A multi-turn episode is an MDP at two levels. At the *turn* level a step is one
utterance: the state ``s_k`` is everything the policy saw before turn ``k``,
the action is the whole tool call it sampled, and the environment's reply
leads to ``s_{k+1}``. At the *token* level a step is one sampled token.
Outcome estimators (:mod:`toolgym.trainers.advantages`) give every token of an
episode the same number; the estimators here give each turn its own, so a good
tool call in a failed episode need not be blamed for the failure.

Shapes: ``B`` trajectories, ``K`` turns (the longest trajectory's), ``T``
tokens, ``M`` continuations. Turn tensors are left-aligned: column ``k`` is
each trajectory's ``k``-th turn and ``turn_mask[b, k]`` says whether
trajectory ``b`` has one. ``turn_index[b, t]`` names the turn whose *action*
token ``t`` is, and is ``-1`` on every other token (prompt, observation,
padding), which is how :func:`broadcast_turns` keeps advantages off the
observation tokens.

Estimators, and the paper each follows:

- :func:`turn_gae`: GAE over turns against turn values ``V(s_k)``; the
  per-turn advantage is then spread over the turn's action tokens.
  :func:`bilevel_gae` runs token-level GAE *inside* each turn, bootstrapped
  from the turn's target (ArCHer's token-level baseline variant).
- :func:`turn_return_advantages`: discounted return-to-go per turn (process
  rewards plus the outcome) minus a leave-one-out baseline per turn index;
  see its docstring for why the *return* is normalised and not each reward
  (verl RFC #7244).
- :func:`gigpo_advantages`: GiGPO (Feng et al. 2025): the episode-level
  group advantage plus ``omega`` times a step-level one, where a step group
  is the turns of one task's group that start from the same observation.
- :func:`mc_values` / :func:`vine_values` / :func:`vine_advantages`: VinePPO
  (Kazemnejad et al. 2024): turn values are Monte-Carlo means of ``M``
  continuations sampled from each turn boundary, advantages are their TD(0)
  differences.

ArCHer's ``Q(s, a) - V(s)`` needs a learned critic; its maths is in
:mod:`toolgym.trainers.critic`.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from toolgym.errors import ConfigError
from toolgym.trainers.advantages import gae, get_advantage_estimator

__all__ = [
    "bilevel_gae",
    "broadcast_turns",
    "discounted_returns",
    "gigpo_advantages",
    "mc_values",
    "step_group_ids",
    "turn_gae",
    "turn_return_advantages",
    "vine_advantages",
    "vine_values",
]


def _as_float(x: Tensor) -> Tensor:
    """Detach ``x`` and give it a floating dtype: advantages are fixed targets."""
    x = x.detach()
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def _check_turns(name: str, x: Tensor, turn_mask: Tensor) -> None:
    if x.dim() != 2 or turn_mask.shape != x.shape:
        raise ValueError(f"{name}: expected [B, K] tensors with a [B, K] turn_mask; got "
                         f"{tuple(x.shape)} and {tuple(turn_mask.shape)}")


def broadcast_turns(turn_values: Tensor, turn_index: Tensor) -> Tensor:
    """Give every action token the value of its own turn, and every other token 0.

    Args:
        turn_values: ``Tensor[B, K]``, one number per turn.
        turn_index: ``LongTensor[B, T]``; the turn each action token belongs to,
            ``-1`` on prompt, observation and padding tokens.

    Returns:
        ``Tensor[B, T]``: ``turn_values[b, turn_index[b, t]]`` where
        ``turn_index[b, t] >= 0``, else 0.

    Raises:
        ValueError: the batch sizes differ, or a token names a turn ``>= K``.
    """
    if (turn_values.dim() != 2 or turn_index.dim() != 2
            or turn_values.shape[0] != turn_index.shape[0]):
        raise ValueError(f"broadcast_turns: expected [B, K] and [B, T]; got "
                         f"{tuple(turn_values.shape)} and {tuple(turn_index.shape)}")
    if turn_index.numel() and int(turn_index.max()) >= turn_values.shape[1]:
        raise ValueError(f"broadcast_turns: turn index {int(turn_index.max())} >= K="
                         f"{turn_values.shape[1]}")
    action = turn_index >= 0
    gathered = turn_values.detach().gather(1, turn_index.clamp(min=0).long())
    return torch.where(action, gathered, 0.0)


def turn_gae(
    rewards: Tensor,
    values: Tensor,
    turn_mask: Tensor,
    *,
    gamma: float,
    lam: float,
    terminated: Tensor,
    bootstrap_values: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """GAE whose steps are turns (ArCHer's utterance-level MDP).

    ``delta_k = r_k + gamma * V(s_{k+1}) - V(s_k)``, ``A_k = delta_k + gamma *
    lam * A_{k+1}``: the recursion of :func:`~toolgym.trainers.advantages.gae`
    with one step per turn, so ``gamma`` and ``lam`` discount *turns*, not
    tokens (a 300-token tool call is one decision, and discounting inside it
    would make the credit depend on how verbose the call is). After the last
    turn a terminated episode bootstraps 0 and a truncated one
    ``bootstrap_values[b]``, the value of the state after its last turn.

    Args:
        rewards: ``Tensor[B, K]``, reward of each turn (process reward, plus
            the outcome on the last turn).
        values: ``Tensor[B, K]``, ``V(s_k)`` before each turn.
        turn_mask: ``Tensor[B, K]``, true on the turns each row has.
        gamma: Discount per turn.
        lam: GAE lambda over turns.
        terminated: ``Tensor[B]`` bool; false where the episode was truncated.
        bootstrap_values: ``Tensor[B]``, read for truncated rows only.

    Returns:
        ``(advantages, returns)``, each ``Tensor[B, K]``, 0 on absent turns.
    """
    _check_turns("turn_gae", rewards, turn_mask)
    return gae(rewards, values, turn_mask, gamma=gamma, lam=lam, terminated=terminated,
               bootstrap_values=bootstrap_values)


def bilevel_gae(
    token_values: Tensor,
    turn_index: Tensor,
    turn_targets: Tensor,
    *,
    gamma: float,
    lam: float,
) -> tuple[Tensor, Tensor]:
    """Token-level GAE inside each turn, bootstrapped from the turn's target.

    The tokens of turn ``k`` form a short episode of their own whose only
    reward, on its last token, is ``turn_targets[b, k]`` (typically the
    turn-level critic's ``Q(s_k, a_k)`` or the turn-level GAE return), and
    which ends there: the next turn's tokens are never looked at, because
    the turn level already accounts for them. This is the hierarchical split
    of ArCHer: the high level says how good the utterance was, the low level
    distributes that over its tokens with a per-token baseline
    ``token_values``. Observation tokens (``turn_index == -1``) are skipped.

    With a single turn and ``turn_targets`` equal to the episode's reward this
    is exactly token-level :func:`~toolgym.trainers.advantages.gae` of a
    terminated episode.

    Args:
        token_values: ``Tensor[B, T]``, the token critic's ``V`` at each token.
        turn_index: ``LongTensor[B, T]``, as for :func:`broadcast_turns`. The
            tokens of one turn must be contiguous.
        turn_targets: ``Tensor[B, K]``, the value each turn's last token bootstraps to.
        gamma: Discount per token inside a turn.
        lam: GAE lambda per token inside a turn.

    Returns:
        ``(advantages, returns)``, each ``Tensor[B, T]``, 0 off action tokens.
    """
    if token_values.shape != turn_index.shape or token_values.dim() != 2:
        raise ValueError(f"bilevel_gae: token_values and turn_index must both be [B, T]; got "
                         f"{tuple(token_values.shape)} and {tuple(turn_index.shape)}")
    values = _as_float(token_values)
    targets = turn_targets.detach().to(values.dtype)
    batch = values.shape[0]
    next_value = values.new_zeros(batch)
    next_adv = values.new_zeros(batch)
    seen = torch.full((batch,), -1, dtype=torch.long, device=values.device)
    advantages = torch.zeros_like(values)
    for t in reversed(range(values.shape[1])):
        k = turn_index[:, t].long()
        step = k >= 0
        last = step & (k != seen)  # scanning backwards, the first token met of a turn is its last
        reward = torch.where(last, targets.gather(1, k.clamp(min=0)[:, None])[:, 0], 0.0)
        nv = torch.where(last, 0.0, next_value)
        na = torch.where(last, 0.0, next_adv)
        adv_t = reward + gamma * nv - values[:, t] + gamma * lam * na
        advantages[:, t] = torch.where(step, adv_t, 0.0)
        next_value = torch.where(step, values[:, t], next_value)
        next_adv = torch.where(step, adv_t, next_adv)
        seen = torch.where(step, k, seen)
    return advantages, torch.where(turn_index >= 0, advantages + values, 0.0)


def discounted_returns(rewards: Tensor, turn_mask: Tensor, *, gamma: float) -> Tensor:
    """Return-to-go of each turn, ``G_k = r_k + gamma * G_{k+1}``, 0 after the last turn.

    That is GAE with ``V = 0`` and ``lam = 1`` on a terminated episode, which is
    how it is computed. A truncated episode is *not* bootstrapped: without a
    critic there is no value to bootstrap from, so its return counts only the
    rewards it collected.

    Args:
        rewards: ``Tensor[B, K]``, reward of each turn.
        turn_mask: ``Tensor[B, K]``, true on the turns each row has.
        gamma: Discount per turn.

    Returns:
        ``Tensor[B, K]``, 0 on absent turns.
    """
    _check_turns("discounted_returns", rewards, turn_mask)
    done = torch.ones(rewards.shape[0], dtype=torch.bool, device=rewards.device)
    returns, _ = gae(rewards, torch.zeros_like(rewards), turn_mask, gamma=gamma, lam=1.0,
                     terminated=done)
    return returns


def _unique_rows(*columns: Tensor) -> Tensor:
    """``LongTensor[N]``: equal ids for equal tuples ``(columns[0][i], columns[1][i], ...)``."""
    return torch.unique(torch.stack([c.long() for c in columns], dim=1), dim=0,
                        return_inverse=True)[1]


def turn_return_advantages(
    returns: Tensor,
    turn_mask: Tensor,
    group_ids: Tensor,
    *,
    scale: Literal["none", "group"] = "none",
    eps: float = 1e-6,
) -> Tensor:
    """Return-to-go minus a leave-one-out baseline per (group, turn index).

    ``A_{i,k} = G_{i,k} - mean{G_{j,k} : j != i, j in group(i), j has turn k}``.
    The baseline is made of *other* episodes only, so it is independent of
    episode ``i``'s own actions, and the estimator stays unbiased whatever
    ``G`` holds (process rewards, outcome, discount). A turn that no other
    episode of its group reached has no baseline and gets 0, as a group of one
    does in GRPO and RLOO.

    Why the return and not each reward: MT-GRPO-style per-turn normalisation
    normalises each turn's reward per turn index and then sums the normalised
    rewards over the turns that follow. Its baseline is then a sum of
    per-index means with as many terms as *this* episode has turns left, so
    it depends on the episode's own stopping decision: an action-dependent
    baseline. verl RFC #7244 ("Per-turn reward support for multi-turn RL: a
    turn-level baseline that stays unbiased under variable turn counts") shows
    the bias equals the accumulated intermediate-reward group mean, a hidden
    penalty on every "take another turn" decision. Summing first and
    subtracting one baseline per turn (as here) does not have it; the test
    suite checks both claims on an MDP whose policy controls termination.

    Args:
        returns: ``Tensor[B, K]``, e.g. :func:`discounted_returns` of the turn rewards.
        turn_mask: ``Tensor[B, K]``, true on the turns each row has.
        group_ids: ``Tensor[B]`` of integers; episodes of one task share an id.
        scale: ``"none"`` (unbiased) or ``"group"``: also divide by the unbiased
            std of the group's episode returns ``G_{.,0}`` (one number per
            group, GRPO's convention; it reweights tasks against each other).
        eps: Added to the std.

    Returns:
        ``Tensor[B, K]``, 0 on absent turns.

    Raises:
        ConfigError: ``scale`` is not ``"none"`` or ``"group"``.
    """
    if scale not in ("none", "group"):
        raise ConfigError(f"turn_return_advantages: scale must be 'none' or 'group', got {scale!r}")
    _check_turns("turn_return_advantages", returns, turn_mask)
    g = _as_float(returns)
    valid = turn_mask.bool()
    cols = torch.arange(g.shape[1], device=g.device).expand_as(g)
    cell = _unique_rows(group_ids[:, None].expand_as(g)[valid], cols[valid])  # (group, k)
    count = _cell_sums(torch.ones_like(g[valid]), cell)
    total = _cell_sums(g[valid], cell)
    loo = torch.where(count > 1, g[valid] - (total - g[valid]) / (count - 1).clamp(min=1), 0.0)
    adv = torch.zeros_like(g)
    adv[valid] = loo
    if scale == "group":
        first = g[:, 0]
        groups = _unique_rows(group_ids)
        n = _cell_sums(torch.ones_like(first), groups)
        mean = _cell_sums(first, groups) / n
        std = (_cell_sums((first - mean).square(), groups) / (n - 1).clamp(min=1)).sqrt()
        adv = adv / (std + eps)[:, None]
    return adv


def _cell_sums(x: Tensor, cell: Tensor) -> Tensor:
    """Per element, the sum of ``x`` over the elements of its cell (``cell``: ``LongTensor[N]``)."""
    return x.new_zeros(int(cell.max()) + 1 if cell.numel() else 0).index_add(0, cell, x)[cell]


def step_group_ids(group_ids: Tensor, state_keys: Tensor) -> Tensor:
    """GiGPO's anchor-state groups: equal ids for turns of one group from one state.

    Args:
        group_ids: ``Tensor[B]``, the episode groups (one task each).
        state_keys: ``LongTensor[B, K]``, a hash of the observation each turn
            starts from (see :func:`toolgym.trainers.turn_batch.state_key`).

    Returns:
        ``LongTensor[B, K]``: two turns share an id iff their episodes share a
        group and their state keys are equal. Turn position does not matter:
        an episode that loops back to a state it saw before joins the same
        step group, as in GiGPO.
    """
    gid = group_ids[:, None].expand_as(state_keys)
    return _unique_rows(gid.reshape(-1), state_keys.reshape(-1)).reshape(state_keys.shape)


def gigpo_advantages(
    step_returns: Tensor,
    turn_mask: Tensor,
    group_ids: Tensor,
    state_keys: Tensor,
    *,
    omega: float = 1.0,
    episode_estimator: str = "grpo",
    step_estimator: str = "grpo",
) -> Tensor:
    """GiGPO (Feng et al. 2025, "Group-in-Group Policy Optimization for LLM Agent Training").

    ``A_{i,k} = A^E_i + omega * A^S_{i,k}``. The episode-level ``A^E`` is an
    outcome estimator over each episode's return ``G_{i,0}`` within its group,
    as in GRPO. The step-level ``A^S`` applies the same kind of estimator to the
    turns' returns-to-go ``G_{i,k}`` within *step groups*: turns of one group
    that start from an identical observation (:func:`step_group_ids`). Turns
    from the same state differ only in the action taken there, so comparing
    their returns scores the action, which the episode-level term cannot.
    No rollouts beyond the group are needed. A step group of one gets
    ``A^S = 0`` (no baseline).

    Args:
        step_returns: ``Tensor[B, K]``, return-to-go of each turn
            (:func:`discounted_returns`); column 0 is each episode's return.
        turn_mask: ``Tensor[B, K]``, true on the turns each row has.
        group_ids: ``Tensor[B]`` of integers, shared by the episodes of one task.
        state_keys: ``LongTensor[B, K]``, hash of the observation before each turn.
        omega: Weight of the step-level term (GiGPO uses 1).
        episode_estimator: Outcome estimator for ``A^E`` (``grpo``, ``drgrpo``, ``rloo``).
        step_estimator: Outcome estimator for ``A^S``; ``rloo`` makes
            ``E[A^S | s, a] = Q(s, a) - V(s)`` exactly.

    Returns:
        ``Tensor[B, K]``, 0 on absent turns.
    """
    _check_turns("gigpo_advantages", step_returns, turn_mask)
    valid = turn_mask.bool()
    if not bool(valid[:, 0].all()):
        raise ValueError("gigpo_advantages: every trajectory needs a first turn")
    returns = step_returns.detach()
    episode = get_advantage_estimator(episode_estimator)(returns[:, 0], group_ids)
    steps = step_group_ids(group_ids, state_keys)
    step_fn = get_advantage_estimator(step_estimator)
    step_adv = torch.zeros_like(returns, dtype=episode.dtype)
    step_adv[valid] = step_fn(returns[valid], steps[valid]).to(episode.dtype)
    return torch.where(valid, episode[:, None] + omega * step_adv, 0.0)


def mc_values(continuation_returns: Tensor, valid: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Monte-Carlo turn values from ``M`` continuations per turn boundary (VinePPO).

    ``V(s_k)`` is estimated by the mean return of ``M`` episodes continued
    from the state before turn ``k`` with the current policy; the mean is an
    unbiased estimate with no critic to train, at the price of ``M`` extra
    rollouts per boundary. The standard error tells how many are enough.

    Args:
        continuation_returns: ``Tensor[B, K, M]``, the return of each
            continuation, counted from boundary ``k`` on.
        valid: ``Tensor[B, K, M]``, bool; false for continuations that were not
            run (or failed for infrastructure reasons). None: all valid.

    Returns:
        ``(values, stderr)``, each ``Tensor[B, K]``: the mean over the valid
        continuations, and its standard error (0 where fewer than two).
    """
    x = _as_float(continuation_returns)
    ok = torch.ones_like(x, dtype=torch.bool) if valid is None else valid.bool()
    n = ok.sum(-1).to(x.dtype)
    mean = torch.where(ok, x, 0.0).sum(-1) / n.clamp(min=1)
    var = torch.where(ok, (x - mean[..., None]).square(), 0.0).sum(-1) / (n - 1).clamp(min=1)
    stderr = torch.where(n > 1, (var / n.clamp(min=1)).sqrt(), 0.0)
    return mean, stderr


def vine_advantages(
    rewards: Tensor,
    values: Tensor,
    turn_mask: Tensor,
    *,
    gamma: float,
    terminated: Tensor,
    bootstrap_values: Tensor | None = None,
) -> Tensor:
    """VinePPO advantages: ``A_k = r_k + gamma * V(s_{k+1}) - V(s_k)`` with MC values.

    VinePPO uses the one-step difference (GAE with ``lam = 0``): with unbiased
    Monte-Carlo values it is an unbiased advantage, and it is the estimate
    with the least variance that uses them. ``values`` come from
    :func:`mc_values`; ``V`` after the last turn is 0 when the episode
    terminated and ``bootstrap_values`` (an MC estimate too) when it was truncated.

    Returns:
        ``Tensor[B, K]``, 0 on absent turns.
    """
    adv, _ = turn_gae(rewards, values, turn_mask, gamma=gamma, lam=0.0, terminated=terminated,
                      bootstrap_values=bootstrap_values)
    return adv


def vine_values(
    continuation_returns: Tensor,
    valid: Tensor,
    returns: Tensor,
    turn_mask: Tensor,
    group_ids: Tensor,
) -> Tensor:
    """``V(s_k)`` for VinePPO: Monte-Carlo means, with the group standing in for ``s_0``.

    - ``k = 0``, group of two or more: the other episodes of the group *are*
      continuations from ``s_0`` (same task, same start), so ``V(s_0)`` is their
      leave-one-out mean return, at no extra rollout cost.
    - Otherwise the mean of the valid continuations (:func:`mc_values`).
    - A boundary with none (all dropped or diverged, or never sampled) falls
      back to the episode's own return-to-go ``G_k``: a one-sample estimate,
      still unbiased for the turn before it; the turn itself then gets an
      advantage that is 0 in expectation, so it is neither pushed nor pulled.

    Args:
        continuation_returns: ``Tensor[B, K, M]``, return of each continuation
            from boundary ``k`` on.
        valid: ``Tensor[B, K, M]`` bool, which continuations exist.
        returns: ``Tensor[B, K]``, the episodes' own returns-to-go
            (:func:`discounted_returns`).
        turn_mask: ``Tensor[B, K]``, true on the turns each row has.
        group_ids: ``Tensor[B]`` of integers; episodes of one task share an id.

    Returns:
        ``Tensor[B, K]``, 0 on absent turns.
    """
    _check_turns("vine_values", returns, turn_mask)
    g = _as_float(returns)
    mc, _ = mc_values(continuation_returns, valid)
    values = torch.where(valid.bool().any(-1), mc.to(g.dtype), g)
    groups = _unique_rows(group_ids)
    n = _cell_sums(torch.ones_like(g[:, 0]), groups)
    loo = (_cell_sums(g[:, 0], groups) - g[:, 0]) / (n - 1).clamp(min=1)
    values[:, 0] = torch.where(n > 1, loo, values[:, 0])
    return torch.where(turn_mask.bool(), values, 0.0)
