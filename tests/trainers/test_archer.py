"""ArCHer's turn critic: TD targets, soft updates, transitions, the buffer, and learning true Q."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from tests.trainers.chain_mdp import F64, HORIZON, Chain, cell_means
from toolgym.rollout.trajectory import Trajectory, Turn
from toolgym.trainers.critic import (
    ArCHerCritic,
    CriticConfig,
    MatchFeatures,
    ReplayBuffer,
    TurnCritic,
    TurnTransition,
    critic_losses,
    soft_update_,
    td_targets,
    trajectory_transitions,
)
from toolgym.trainers.turn_advantages import discounted_returns

Z = 4.5


def test_td_targets_mask_terminal_states_and_bootstrap_the_rest() -> None:
    out = td_targets(torch.tensor([1.0, 0.5, 2.0]), torch.tensor([10.0, 4.0, float("nan")]),
                     torch.tensor([False, True, True]), gamma=0.9)
    assert_close(out, torch.tensor([10.0, 0.5, 2.0]))  # 1 + 0.9 * 10 ; terminal: r only


def test_soft_update_is_polyak_averaging() -> None:
    online, target = nn.Linear(1, 1), nn.Linear(1, 1)
    for p in online.parameters():
        nn.init.constant_(p, 1.0)
    for p in target.parameters():
        nn.init.constant_(p, 0.0)
    soft_update_(target, online, 0.1)
    assert_close(target.weight, torch.tensor([[0.1]]))
    soft_update_(target, online, 0.1)  # 0.9 * 0.1 + 0.1 = 0.19 = 1 - 0.9^2
    assert_close(target.bias, torch.tensor([0.19]))
    soft_update_(target, online, 1.0)
    assert_close(target.weight, online.weight)


def test_critic_losses_are_mses_against_detached_targets() -> None:
    q1 = torch.tensor([1.0, 2.0], requires_grad=True)
    target = torch.tensor([0.0, 0.0], requires_grad=True)
    loss, stats = critic_losses(q1, q1 * 2, q1 * 0, target, target + 1)
    assert stats == {"critic_q1_loss": 2.5, "critic_q2_loss": 10.0, "critic_v_loss": 1.0}
    loss.backward()
    assert target.grad is None  # no gradient flows into the targets


def test_transitions_of_terminated_and_truncated_episodes() -> None:
    turns = [Turn("a", [5, 6], prompt_ids=[1, 2], obs_ids=[3], reward=0.2),
             Turn("b", [7], obs_ids=[8], reward=0.0)]
    done = Trajectory("e", "t", turns, final_reward=1.0, outcome="success")
    cut = Trajectory("e", "t", turns, final_reward=0.0, outcome="truncated")
    assert trajectory_transitions(done, process_coef=0.5) == [
        TurnTransition((1, 2), (5, 6), 0.1, (1, 2, 5, 6, 3), False),
        TurnTransition((1, 2, 5, 6, 3), (7,), 1.0, (), True)]
    last = trajectory_transitions(cut, context_tokens=3)[-1]
    # truncated: not done, and the next state is the context after the last observation (cut to 3)
    assert (last.state, last.next_state, last.done) == ((5, 6, 3), (3, 7, 8), False)


def test_replay_buffer_is_fifo_and_its_state_round_trips() -> None:
    buf = ReplayBuffer(3, seed=1)
    buf.extend([TurnTransition((i,), (i,), float(i), (), True) for i in range(5)])
    assert [t.reward for t in buf.items] == [2.0, 3.0, 4.0]
    state = buf.state_dict()
    again = ReplayBuffer(3, seed=99)
    again.load_state_dict(state)
    assert again.sample(2) == buf.sample(2)


def test_advantages_are_min_q_minus_v_of_the_online_critic() -> None:
    torch.manual_seed(0)
    critic = ArCHerCritic(CriticConfig(dim=4, hidden=8, warmup_steps=0, whiten=False),
                          vocab_size=10, gamma=1.0)
    batch = [TurnTransition((1, 2), (3,), 0.0, (), True), TurnTransition((4,), (5, 6), 0.0, (),
                                                                           True)]
    q1, q2, v = critic.online([b.state for b in batch], [b.action for b in batch])
    assert_close(critic.advantages(batch), torch.minimum(q1, q2).detach() - v.detach())


def test_advantages_are_zero_until_the_critic_has_warmed_up_then_whitened() -> None:
    torch.manual_seed(0)
    config = CriticConfig(dim=4, hidden=8, batch_size=4, updates_per_step=3, warmup_steps=5)
    critic = ArCHerCritic(config, vocab_size=10, gamma=1.0)
    batch = [TurnTransition((1,), (a,), float(a > 4), (), True) for a in range(2, 8)]
    critic.buffer.extend(batch)
    critic.update()
    assert critic.updates == 3 and not critic.warm
    assert_close(critic.advantages(batch), torch.zeros(6))  # the policy stands still
    critic.update()
    assert critic.warm
    adv = critic.advantages(batch)
    assert_close((adv.mean(), adv.std()), (torch.tensor(0.0), torch.tensor(1.0)), atol=1e-3,
                 rtol=0)
    state = critic.state_dict()
    again = ArCHerCritic(config, vocab_size=10, gamma=1.0)
    again.load_state_dict(state)
    assert again.warm  # a resumed run does not warm up again


def test_match_features_mark_repeated_ids_in_the_window() -> None:
    out = MatchFeatures(width=4)([[9, 1, 2, 1, 3], [5, 5]])
    pairs = torch.triu_indices(4, 4, offset=1).T.tolist()  # positions within the last 4
    assert [pairs[i] for i in out[0].nonzero()[:, 0].tolist()] == [[0, 2]]  # the two 1s
    assert [pairs[i] for i in out[1].nonzero()[:, 0].tolist()] == [[2, 3]]  # 5, 5; pads never


def _keychain_like(rng: random.Random, n: int) -> list[list[TurnTransition]]:
    """Lookups where the right key is the one the last observation pointed to.

    A state ends with ``[SRC, ARROW, DST, END]``; the right action is ``[GET,
    DST]``. Right lookups lead on to the answer (reward 1); wrong ones to a
    dead end (reward 0). Key ids 10..69: held-out episodes mostly pair keys
    never seen together, so only a critic that reads *copying* (not pairs of
    ids) ranks them right.
    """
    arrow, get, end = 1, 2, 3
    episodes = []
    for _ in range(n):
        src, dst = rng.sample(range(10, 70), 2)
        state = (src, arrow, dst, end)
        right = rng.random() < 0.5
        key = dst if right else rng.choice([k for k in range(10, 70) if k != dst])
        nxt = (*state, get, key, key, arrow, 4 if right else 5, end)
        episodes.append([TurnTransition(state, (get, key), 0.0, nxt, False),
                         TurnTransition(nxt, (4 if right else 5,), float(right), (), True)])
    return episodes


@pytest.mark.parametrize("match_tokens", [0, 12])
def test_critic_ranks_the_copied_key_above_a_wrong_one_only_with_match_features(
        match_tokens: int) -> None:
    """Q - V of a lookup: right above wrong on held-out episodes with match features (the fix);
    a bag of tokens stays near chance (what made ArCHer unlearn KeyChain-v0)."""
    torch.manual_seed(0)
    rng = random.Random(0)
    config = CriticConfig(dim=16, hidden=32, lr=3e-3, batch_size=64, updates_per_step=400,
                          match_tokens=match_tokens, warmup_steps=0, whiten=False)
    critic = ArCHerCritic(config, vocab_size=72, gamma=1.0)
    critic.buffer.extend([t for ep in _keychain_like(rng, 300) for t in ep])
    critic.update()
    test = [ep[0] for ep in _keychain_like(rng, 200)]
    adv = critic.advantages(test)
    right = torch.tensor([t.action[1] == t.state[2] for t in test])
    pairs = (adv[right][:, None] > adv[~right][None, :]).float().mean()  # AUC
    if match_tokens:
        assert pairs > 0.95
    else:
        assert pairs < 0.75


# -------------------------------------------------- learning the true Q off-policy
def _chain_transitions(mdp: Chain, groups: int, seed: int) -> tuple[list[TurnTransition], ...]:
    eps = mdp.sample(groups=groups, group_size=1, seed=seed)
    tok = lambda k, p: (1 + 10 * k + p,)  # noqa: E731  one token per state: a tabular critic
    out = []
    for b in range(len(eps.rewards)):
        row = []
        for k in range(HORIZON):
            p, a = int(eps.states[b, k]), int(eps.actions[b, k])
            nxt = tok(k + 1, int(eps.states[b, k + 1])) if k + 1 < HORIZON else ()
            row.append(TurnTransition(tok(k, p), (40 + a,), float(eps.rewards[b, k]), nxt,
                                      k + 1 == HORIZON))
        out.append(row)
    return out, eps


def test_critic_learns_true_q_and_advantage_from_a_replay_buffer() -> None:
    """TD with double Q and a Polyak target recovers Q(s, a) and Q - V of the chain MDP.

    The critic fits the *sampled* MDP; its distance to the truth is bounded by
    the Monte-Carlo standard error of each cell (TD's fixed point on the same
    data has no more variance than the MC mean) plus a small optimisation slack.
    """
    torch.manual_seed(0)
    mdp = Chain(gamma=0.9)
    rows, eps = _chain_transitions(mdp, groups=3000, seed=7)
    critic = ArCHerCritic(CriticConfig(dim=16, hidden=32, lr=3e-3, tau=0.05, batch_size=256,
                                       buffer_size=20_000, updates_per_step=1000,
                                       match_tokens=0, whiten=False),
                          vocab_size=48, gamma=0.9, seed=0)
    critic.buffer.extend([t for row in rows for t in row])
    first = critic.update()
    second = critic.update()
    assert second["critic_q1_loss"] < first["critic_q1_loss"]
    flat = [t for row in rows for t in row]
    states, actions = [t.state for t in flat], [t.action for t in flat]
    with torch.no_grad():
        q1, q2, v = critic.online(states, actions)
    q = torch.minimum(q1, q2).view(-1, HORIZON).to(F64)
    adv = critic.advantages(flat).view(-1, HORIZON).to(F64)
    mc = discounted_returns(eps.rewards, eps.mask, gamma=0.9)
    cells = 100 * torch.arange(HORIZON).expand_as(eps.states) + 10 * eps.states + eps.actions
    mc_stats = cell_means(mc, cells, eps.mask)
    learned_q, learned_adv = cell_means(q, cells, eps.mask), cell_means(adv, cells, eps.mask)
    checked = 0
    for cell, (_, se, n) in mc_stats.items():
        if n < 30:
            continue
        k, p, a = cell // 100, cell // 10 % 10, cell % 10
        tol = Z * se + 0.04
        assert abs(learned_q[cell][0] - mdp.Q[k, p, a]) < tol, (cell, learned_q[cell],
                                                                 mdp.Q[k, p, a])
        assert abs(learned_adv[cell][0] - (mdp.Q[k, p, a] - mdp.V[k, p])) < 2 * tol, cell
        checked += 1
    assert checked >= 10


def test_turn_critic_value_ignores_the_action() -> None:
    torch.manual_seed(0)
    critic = TurnCritic(vocab_size=10, dim=4, hidden=8)
    _, _, v1 = critic([[1, 2]], [[3]])
    _, _, v2 = critic([[1, 2]], [[4, 5]])
    assert_close(v1, v2)
    assert_close(critic.value([[1, 2]]), v1)
