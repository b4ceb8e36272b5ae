"""ArCHer's turn critic: TD targets, soft updates, transitions, the buffer, and learning true Q."""

from __future__ import annotations

import torch
from torch import nn
from torch.testing import assert_close

from tests.trainers.chain_mdp import F64, HORIZON, Chain, cell_means
from toolgym.rollout.trajectory import Trajectory, Turn
from toolgym.trainers.archer import ArCHerCritic, CriticConfig, trajectory_transitions
from toolgym.trainers.critic import (
    ReplayBuffer,
    TurnCritic,
    TurnTransition,
    critic_losses,
    soft_update_,
    td_targets,
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
    critic = ArCHerCritic(CriticConfig(dim=4, hidden=8), vocab_size=10, gamma=1.0)
    batch = [TurnTransition((1, 2), (3,), 0.0, (), True), TurnTransition((4,), (5, 6), 0.0, (),
                                                                           True)]
    q1, q2, v = critic.online([b.state for b in batch], [b.action for b in batch])
    assert_close(critic.advantages(batch), torch.minimum(q1, q2).detach() - v.detach())


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
                                       buffer_size=20_000, updates_per_step=1000),
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
