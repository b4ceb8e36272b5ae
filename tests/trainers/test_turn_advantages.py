"""Turn-level estimators: hand-worked numbers, reductions to token level, and unbiasedness.

The statistical tests sample many episodes of the MDPs in ``chain_mdp`` with a
seeded generator and compare each estimator's mean per ``(state, action)``
cell with the value dynamic programming gives, within ``Z`` standard errors
of that mean. ``Z = 4.5``: with a few dozen cells per test a false alarm is
~1e-4 even before the seed makes the run deterministic.
"""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from tests.trainers.chain_mdp import F64, HORIZON, Chain, Episodes, Stopping, cell_means
from toolgym.rollout.trajectory import Trajectory, Turn
from toolgym.trainers.advantages import gae
from toolgym.trainers.batching import build_batch
from toolgym.trainers.turn_advantages import (
    bilevel_gae,
    broadcast_turns,
    discounted_returns,
    gigpo_advantages,
    mc_values,
    step_group_ids,
    turn_gae,
    turn_return_advantages,
    vine_advantages,
    vine_values,
)
from toolgym.trainers.turn_batch import state_key, turn_contexts, turn_rewards, turn_tensors

Z = 4.5


def t(x: list) -> torch.Tensor:
    return torch.tensor(x, dtype=F64)


# ------------------------------------------------------------ hand-worked values
def test_broadcast_gives_each_turn_its_own_action_tokens_only() -> None:
    out = broadcast_turns(t([[1.0, 2.0]]), torch.tensor([[-1, 0, 0, -1, -1, 1, -1]]))
    assert out.tolist() == [[0.0, 1.0, 1.0, 0.0, 0.0, 2.0, 0.0]]
    with pytest.raises(ValueError, match="turn index 2"):
        broadcast_turns(t([[1.0, 2.0]]), torch.tensor([[2]]))


def test_build_batch_puts_turn_advantages_on_their_action_tokens_not_observations() -> None:
    turns = [Turn("a", [11, 12], [-.1, -.1], prompt_ids=[1, 2, 3], obs_ids=[21, 22]),
             Turn("b", [13], [-.1], obs_ids=[23]),
             Turn("c", [14, 15], [-.1, -.1])]
    traj = Trajectory("e", "t", turns, final_reward=1.0, group_id="g", outcome="success")
    batch, _ = build_batch([traj], pad_id=0,
                           turn_advantage_fn=lambda kept, g: t([[0.5, -1.0, 2.0]]))
    #            prompt   turn 0    obs       turn 1  obs   turn 2
    assert batch.input_ids.tolist() == [[1, 2, 3, 11, 12, 21, 22, 13, 23, 14, 15]]
    assert batch.advantages.tolist() == [[0, 0, 0, .5, .5, 0, 0, -1, 0, 2, 2]]
    assert batch.loss_mask.tolist() == [[bool(a) for a in batch.advantages[0].tolist()]]


def test_turn_gae_by_hand_terminated_and_truncated() -> None:
    # delta_1 = 1 - 0.8 = 0.2 ; delta_0 = 0 + 0.9*0.8 - 0.5 = 0.22 ; A_0 = 0.22 + 0.9*0.5*0.2
    kw = dict(gamma=0.9, lam=0.5)
    adv, ret = turn_gae(t([[0.0, 1.0]]), t([[0.5, 0.8]]), torch.tensor([[True, True]]),
                        terminated=torch.tensor([True]), **kw)
    assert_close(adv, t([[0.31, 0.2]]))
    assert_close(ret, t([[0.81, 1.0]]))
    # truncated: V after the last turn is 2.0 -> delta_1 = 1 + 1.8 - 0.8 = 2.0, A_0 = 0.22 + 0.9
    adv, _ = turn_gae(t([[0.0, 1.0]]), t([[0.5, 0.8]]), torch.tensor([[True, True]]),
                      terminated=torch.tensor([False]), bootstrap_values=t([2.0]), **kw)
    assert_close(adv, t([[1.12, 2.0]]))


def test_turn_gae_equals_token_gae_when_every_turn_is_one_token() -> None:
    """Each turn one action token, observation tokens in between: the two recursions agree."""
    gen = torch.Generator().manual_seed(0)
    token_mask = torch.tensor([[1, 0, 0, 1, 0, 1], [1, 0, 1, 0, 0, 0]], dtype=torch.bool)
    rewards = torch.rand((2, 6), generator=gen, dtype=F64) * token_mask
    values = torch.rand((2, 6), generator=gen, dtype=F64)
    kw = dict(gamma=0.8, lam=0.7, terminated=torch.tensor([True, False]),
              bootstrap_values=t([0.0, 0.6]))
    token_adv, _ = gae(rewards, values, token_mask, **kw)
    turn_mask = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)
    pack = lambda x: torch.zeros((2, 3), dtype=F64).masked_scatter(turn_mask, x[token_mask])  # noqa: E731
    turn_adv, _ = turn_gae(pack(rewards), pack(values), turn_mask, **kw)
    assert_close(turn_adv[turn_mask], token_adv[token_mask])


def test_bilevel_gae_by_hand() -> None:
    # turn 0 = tokens 0-1, an observation token, turn 1 = token 3; gamma = lam = 1
    adv, ret = bilevel_gae(t([[0.1, 0.2, 9.0, 0.3]]), torch.tensor([[0, 0, -1, 1]]),
                           t([[0.5, 1.0]]), gamma=1.0, lam=1.0)
    # t1: 0.5 - 0.2 = 0.3 ; t0: (0.2 - 0.1) + 0.3 = 0.4 ; t3: 1.0 - 0.3 ; obs: 0
    assert_close(adv, t([[0.4, 0.3, 0.0, 0.7]]))
    assert_close(ret, t([[0.5, 0.5, 0.0, 1.0]]))


@pytest.mark.parametrize(("gamma", "lam"), [(1.0, 1.0), (0.9, 0.95), (0.7, 0.0)])
def test_bilevel_gae_with_one_turn_is_token_level_gae(gamma: float, lam: float) -> None:
    gen = torch.Generator().manual_seed(1)
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 0], [0, 1, 1, 0, 0, 0, 0]], dtype=torch.bool)
    values = torch.rand((2, 7), generator=gen, dtype=F64)
    outcome = t([1.0, -0.5])
    last = torch.tensor([5, 2])
    rewards = torch.zeros((2, 7), dtype=F64)
    rewards[torch.arange(2), last] = outcome
    expected, expected_ret = gae(rewards, values, mask, gamma=gamma, lam=lam,
                                 terminated=torch.tensor([True, True]))
    turn_index = torch.where(mask, 0, -1)
    adv, ret = bilevel_gae(values, turn_index, outcome[:, None], gamma=gamma, lam=lam)
    assert_close(adv, expected)
    assert_close(ret, expected_ret)


def test_discounted_returns_by_hand() -> None:
    mask = torch.tensor([[True, True, True], [True, False, False]])
    out = discounted_returns(t([[0.1, 0.0, 1.0], [2.0, 0.0, 0.0]]), mask, gamma=0.5)
    assert_close(out, t([[0.35, 0.5, 1.0], [2.0, 0.0, 0.0]]))


def test_turn_return_advantages_leave_one_out_per_turn_index_by_hand() -> None:
    returns = t([[1.0, 2.0], [3.0, 0.0], [5.0, 6.0], [7.0, 8.0]])
    mask = torch.tensor([[True, True], [True, False], [True, True], [True, True]])
    groups = torch.tensor([4, 4, 4, 9])  # the last episode is alone in its group
    adv = turn_return_advantages(returns, mask, groups)
    # turn 0 of row 0: 1 - (3+5)/2 ; turn 1 of row 0: 2 - 6 (row 1 has no turn 1) ; ...
    assert_close(adv, t([[-3.0, -4.0], [0.0, 0.0], [3.0, 4.0], [0.0, 0.0]]))
    scaled = turn_return_advantages(returns, mask, groups, scale="group", eps=0.0)
    assert_close(scaled[:3], adv[:3] / 2.0)  # std of (1, 3, 5) is 2


def test_gigpo_groups_turns_by_identical_observation_within_a_task_group() -> None:
    # three episodes of one task: all start from key 7; turn 1 from key 11 (eps 0, 1) or 13 (ep 2).
    # A fourth episode of another task also reaches key 11: it must not join the step group.
    returns = t([[1.0, 1.0], [0.0, 0.0], [0.5, 0.5], [9.0, 9.0]])
    mask = torch.ones((4, 2), dtype=torch.bool)
    groups = torch.tensor([0, 0, 0, 1])
    keys = torch.tensor([[7, 11], [7, 11], [7, 13], [7, 11]])
    ids = step_group_ids(groups, keys)
    assert ids[0, 1] == ids[1, 1] != ids[2, 1] and ids[3, 1] != ids[0, 1] != ids[3, 0]
    adv = gigpo_advantages(returns, mask, groups, keys, omega=0.5, episode_estimator="rloo",
                           step_estimator="rloo")
    # episode RLOO: [0.75, -0.75, 0, 0]; step RLOO, turn 0 = same; turn 1: [1, -1, 0 (alone), 0]
    assert_close(adv, t([[1.125, 1.25], [-1.125, -1.25], [0.0, 0.0], [0.0, 0.0]]))


def test_mc_values_mean_and_standard_error_by_hand() -> None:
    values, stderr = mc_values(t([[[1, 0, 1, 0], [2, 2, 9, 9]]]),
                               torch.tensor([[[True] * 4, [True, True, False, False]]]))
    assert_close(values, t([[0.5, 2.0]]))
    assert_close(stderr, t([[(1 / 3 / 4) ** 0.5, 0.0]]))


def test_vine_values_group_for_the_first_turn_mc_mean_after_own_return_without_samples() -> None:
    returns = t([[1.0, 0.5], [0.0, 0.0], [3.0, 2.0]])
    mask = torch.tensor([[True, True], [True, True], [True, False]])
    conts = t([[[9, 9], [1, 0]], [[9, 9], [7, 7]], [[4, 6], [0, 0]]])
    valid = torch.tensor([[[True, True], [True, True]], [[False, False], [False, False]],
                          [[True, True], [False, False]]])
    values = vine_values(conts, valid, returns, mask, torch.tensor([0, 0, 1]))
    # rows 0, 1 share a group: V(s_0) is the other's return; row 2 is alone: its MC mean.
    # Row 1's second boundary has no valid continuation: its own return-to-go.
    assert_close(values, t([[0.0, 0.5], [1.0, 0.0], [5.0, 0.0]]))


def test_turn_rewards_count_the_outcome_once_and_state_keys_are_stable() -> None:
    turns = [Turn("a", [5], reward=0.2, prompt_ids=[1], obs_ids=[2], observation="ok"),
             Turn("b", [6], reward=0.7, obs_ids=[3], observation="ok"),
             Turn("c", [7], reward=0.7)]
    traj = Trajectory("e", "task", turns, final_reward=0.7, outcome="success")
    assert turn_rewards(traj, process_coef=0.5) == [0.1, 0.35, 0.7]
    assert turn_contexts(traj) == [[1], [1, 5, 2], [1, 5, 2, 6, 3]]
    tt = turn_tensors([traj])
    assert tt.state_keys[0, 1] == tt.state_keys[0, 2] == state_key("ok") != tt.state_keys[0, 0]
    assert tt.terminated.tolist() == [True]


# ------------------------------------------------------- unbiasedness on small MDPs
def _cells(eps: Episodes) -> torch.Tensor:
    k = torch.arange(HORIZON).expand_as(eps.states)
    return 100 * k + 10 * eps.states + eps.actions


def _check(estimate: torch.Tensor, eps: Episodes, truth: dict[int, float],
           valid: torch.Tensor | None = None, min_count: int = 30) -> int:
    """Assert every cell's mean is within Z standard errors of ``truth``; return cells checked."""
    valid = eps.mask if valid is None else valid & eps.mask
    checked = 0
    for cell, (mean, se, n) in cell_means(estimate, _cells(eps), valid).items():
        if n < min_count:
            continue
        assert abs(mean - truth[cell]) < Z * se + 1e-9, (cell, mean, truth[cell], se, n)
        checked += 1
    return checked


def _advantage_truth(mdp: Chain) -> dict[int, float]:
    return {100 * k + 10 * p + a: q - mdp.V[k, p] for (k, p, a), q in mdp.Q.items()}


def _zero_mean_per_state(estimate: torch.Tensor, eps: Episodes,
                         valid: torch.Tensor | None = None) -> None:
    """Under the behaviour policy, E_a[A(s, a)] = 0 in every state."""
    valid = eps.mask if valid is None else valid & eps.mask
    states = 10 * torch.arange(HORIZON).expand_as(eps.states) + eps.states
    for cell, (mean, se, n) in cell_means(estimate, states, valid).items():
        if n >= 30:
            assert abs(mean) < Z * se + 1e-9, (cell, mean, se)


def test_turn_gae_with_true_values_is_unbiased_for_q_minus_v() -> None:
    mdp = Chain(gamma=0.9)
    eps = mdp.sample(groups=1000, group_size=4, seed=0)
    values = torch.tensor([[mdp.V[k, int(eps.states[b, k])] for k in range(HORIZON)]
                           for b in range(len(eps.states))], dtype=F64)
    adv, _ = turn_gae(eps.rewards, values, eps.mask, gamma=0.9, lam=0.7,
                      terminated=torch.ones(len(values), dtype=torch.bool))
    assert _check(adv, eps, _advantage_truth(mdp)) >= 10
    _zero_mean_per_state(adv, eps)


def test_monte_carlo_returns_estimate_q() -> None:
    """lam = 1 and V = 0: the turn-GAE return is the MC return, whose mean is Q(s, a)."""
    mdp = Chain(gamma=0.9)
    eps = mdp.sample(groups=1000, group_size=4, seed=1)
    _, ret = turn_gae(eps.rewards, torch.zeros_like(eps.rewards), eps.mask, gamma=0.9, lam=1.0,
                      terminated=torch.ones(len(eps.rewards), dtype=torch.bool))
    assert_close(ret, discounted_returns(eps.rewards, eps.mask, gamma=0.9))
    truth = {100 * k + 10 * p + a: q for (k, p, a), q in mdp.Q.items()}
    assert _check(ret, eps, truth) >= 10


def test_gigpo_step_advantage_is_unbiased_for_q_minus_v_in_its_step_group() -> None:
    mdp = Chain()
    eps = mdp.sample(groups=600, group_size=8, seed=2)
    returns = discounted_returns(eps.rewards, eps.mask, gamma=1.0)
    kw = dict(episode_estimator="rloo", step_estimator="rloo")
    full = gigpo_advantages(returns, eps.mask, eps.group_ids, eps.keys(), omega=1.0, **kw)
    episode = gigpo_advantages(returns, eps.mask, eps.group_ids, eps.keys(), omega=0.0, **kw)
    step = full - episode
    ids = step_group_ids(eps.group_ids, eps.keys())
    sizes = torch.zeros(int(ids.max()) + 1).index_add(0, ids.flatten(),
                                                      torch.ones(ids.numel()))[ids]
    shared = sizes > 1  # a step group of one has no baseline (A^S = 0 by definition)
    assert _check(step, eps, _advantage_truth(mdp), valid=shared) >= 10
    _zero_mean_per_state(step, eps, valid=shared)


def test_turn_return_baseline_is_the_marginal_value_of_the_turn_index() -> None:
    """LOO per turn index: E[A | s, a] = Q(s, a) - E[V(s_k)], and E[A | k] = 0."""
    mdp = Chain()
    eps = mdp.sample(groups=500, group_size=8, seed=3)
    adv = turn_return_advantages(discounted_returns(eps.rewards, eps.mask, gamma=1.0), eps.mask,
                                 eps.group_ids)
    probs = mdp.state_probs()
    marginal = {k: sum(pr * mdp.V[kk, p] for (kk, p), pr in probs.items() if kk == k)
                for k in range(HORIZON)}
    truth = {100 * k + 10 * p + a: q - marginal[k] for (k, p, a), q in mdp.Q.items()}
    assert _check(adv, eps, truth) >= 10
    for k in range(HORIZON):
        x = adv[:, k]
        assert abs(float(x.mean())) < Z * float(x.std()) / len(x) ** 0.5


def _naive_per_turn_normalised(eps: Episodes) -> torch.Tensor:
    """MT-GRPO style, the construction verl RFC #7244 warns about (loop oracle).

    Each turn's reward is centred by the group mean of the rewards at that
    turn index, then the centred rewards of the turns that follow are summed.
    """
    out = torch.zeros_like(eps.rewards)
    for b in range(len(eps.rewards)):
        group = eps.group_ids == eps.group_ids[b]
        n_turns = int(eps.mask[b].sum())
        centred = [float(eps.rewards[b, j] - eps.rewards[group & eps.mask[:, j], j].mean())
                   for j in range(n_turns)]
        for k in range(n_turns):
            out[b, k] = sum(centred[k:])
    return out


def test_normalising_the_return_not_each_reward_is_unbiased_when_the_policy_stops() -> None:
    """verl RFC #7244: per-index reward normalisation penalises "take another turn".

    The Stopping MDP's state is the turn index, so the exact advantage of
    going on at turn 0 is Q(0, go) - Q(0, stop). The return-based estimator
    recovers it; the naive one is off by far more than its sampling error.
    """
    mdp = Stopping()
    eps = mdp.sample(groups=400, group_size=8, seed=4)
    ours = turn_return_advantages(discounted_returns(eps.rewards, eps.mask, gamma=1.0), eps.mask,
                                  eps.group_ids)
    naive = _naive_per_turn_normalised(eps)
    true_gap = mdp.Q[0, 1] - mdp.Q[0, 0]

    def gap(adv: torch.Tensor) -> tuple[float, float]:
        go, stop = adv[eps.actions[:, 0] == 1, 0], adv[eps.actions[:, 0] == 0, 0]
        se = (go.var() / len(go) + stop.var() / len(stop)).sqrt()
        return float(go.mean() - stop.mean()), float(se)

    ours_gap, ours_se = gap(ours)
    naive_gap, naive_se = gap(naive)
    assert abs(ours_gap - true_gap) < Z * ours_se
    assert abs(naive_gap - true_gap) > 10 * naive_se  # the bias is not sampling noise


def continuation_returns(mdp: Chain, eps: Episodes, m: int, boundaries: range, *,
                         seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``m`` continuations from each of ``boundaries`` of every episode, by the same sampler.

    Returns their discounted returns ``[B, K, m]`` and which exist.
    """
    gen = torch.Generator().manual_seed(seed)
    b = len(eps.rewards)
    conts = torch.zeros((b, HORIZON, m), dtype=F64)
    valid = torch.zeros(conts.shape, dtype=torch.bool)
    for k in boundaries:
        cont = mdp.simulate(torch.full((b * m,), k, dtype=torch.long),
                            eps.states[:, k].repeat_interleave(m), gen)
        conts[:, k] = discounted_returns(cont.rewards, cont.mask, gamma=0.9)[:, k].view(b, m)
        valid[:, k] = True
    return conts, valid


def test_vine_mc_values_estimate_v_and_their_advantages_q_minus_v() -> None:
    mdp = Chain(gamma=0.9)
    eps = mdp.sample(groups=500, group_size=4, seed=5)
    b = len(eps.rewards)
    conts, _ = continuation_returns(mdp, eps, 4, range(HORIZON), seed=6)
    values, stderr = mc_values(conts)
    assert bool((stderr > 0).any())
    v_truth = {10 * k + p: mdp.V[k, p] for (k, p) in mdp.V if k < HORIZON}
    states = 10 * torch.arange(HORIZON).expand_as(eps.states) + eps.states
    for cell, (mean, se, n) in cell_means(values, states, eps.mask).items():
        if n >= 30:
            assert abs(mean - v_truth[cell]) < Z * se + 1e-9, (cell, mean, v_truth[cell])
    adv = vine_advantages(eps.rewards, values, eps.mask, gamma=0.9,
                          terminated=torch.ones(b, dtype=torch.bool))
    assert _check(adv, eps, _advantage_truth(mdp)) >= 10
    _zero_mean_per_state(adv, eps)


def test_vine_with_the_group_as_first_boundary_is_unbiased_for_q_minus_v() -> None:
    """What the trainer runs: continuations from turns 1 and 2, V(s_0) from the group."""
    mdp = Chain(gamma=0.9)
    eps = mdp.sample(groups=500, group_size=4, seed=7)
    b = len(eps.rewards)
    conts, valid = continuation_returns(mdp, eps, 2, range(1, HORIZON), seed=8)
    returns = discounted_returns(eps.rewards, eps.mask, gamma=0.9)
    values = vine_values(conts, valid, returns, eps.mask, eps.group_ids)
    adv = vine_advantages(eps.rewards, values, eps.mask, gamma=0.9,
                          terminated=torch.ones(b, dtype=torch.bool))
    assert _check(adv, eps, _advantage_truth(mdp)) >= 10
    _zero_mean_per_state(adv, eps)
