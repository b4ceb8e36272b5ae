"""ArCHer's utterance-level critic: network, TD maths, replay buffer of turns, and learner.

ArCHer (Zhou et al. 2024, "ArCHer: Training Language Model Agents via
Hierarchical Multi-Turn RL") trains a critic *off-policy* at the level of
turns: a state is the context before a turn, an action is the whole
utterance. The critic has

- two Q heads ``Q_1, Q_2(s, a)`` (clipped double Q, Fujimoto et al. 2018:
  taking the minimum of two independently trained estimates counters the
  upward bias of a max/argmax over a noisy one),
- a V head ``V(s)``,
- a target copy of all three, moved towards the online one by a soft
  (Polyak) update ``target <- tau * online + (1 - tau) * target`` after every
  gradient step, so the TD targets change slowly.

Bellman targets, with ``done`` true only for *terminated* transitions (a
truncated episode's last state still has a future, so it is bootstrapped)::

    Q_i(s, a) <- r + gamma * (1 - done) * V_target(s')
    V(s)      <- min(Q1_target, Q2_target)(s, a)       a from the buffer

The V target uses the buffer's action rather than a fresh sample from the
current policy (ArCHer samples one): this needs no generation inside the
critic update, and with a buffer that holds recent policies only it
evaluates nearly the current policy. The token-level policy gradient then
uses ``A(s, a) = min(Q1, Q2)(s, a) - V(s)`` on every token of the turn.

States and actions are token ids. :class:`BagEncoder` mean-pools learned
token embeddings (an ``EmbeddingBag``): a small encoder that costs
next to nothing on CPU and keeps the critic independent of the policy's
weights, so its off-policy updates never interfere with the policy's. A bag
cannot tell whether an action copies what the latest observation showed (the
key a lookup pointed to, the value a tool returned) unless it was trained on
that pair of ids; :class:`MatchFeatures`, token-equality features over the
end of ``s`` (for ``V``) and of ``s`` followed by ``a`` (for ``Q``), tell it
for any ids.

:class:`ArCHerCritic` is the learner around them: each training step the
trainer hands it the new episodes (:meth:`ArCHerCritic.observe`: their turns
go into the replay buffer), runs :meth:`ArCHerCritic.update`
(``updates_per_step`` TD steps on minibatches drawn from the whole buffer,
each followed by a soft target update), then asks for the advantages or
values of the new turns. Its users: ArCHer itself
(:mod:`toolgym.trainers.archer`), turn-level GAE (``turn_estimator:
turn_gae``) and bi-level GAE (:mod:`toolgym.trainers.bilevel`).

    >>> from toolgym.rollout.trajectory import Trajectory, Turn
    >>> t = Trajectory("e", "t", [Turn("a", [5], prompt_ids=[1], obs_ids=[2]), Turn("b", [6])],
    ...                final_reward=1.0, outcome="success")
    >>> [(x.state, x.action, x.reward, x.done) for x in trajectory_transitions(t)]
    [((1,), (5,), 0.0, False), ((1, 5, 2), (6,), 1.0, True)]
"""

from __future__ import annotations

import copy
import random
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from toolgym.errors import ConfigError
from toolgym.rollout.trajectory import Trajectory
from toolgym.trainers.advantages import whiten
from toolgym.trainers.config import option
from toolgym.trainers.turn_batch import after_last_turn, turn_contexts, turn_rewards

__all__ = [
    "ArCHerCritic",
    "BagEncoder",
    "CriticConfig",
    "MatchFeatures",
    "ReplayBuffer",
    "TurnCritic",
    "TurnTransition",
    "as_columns",
    "critic_losses",
    "soft_update_",
    "td_targets",
    "trajectory_transitions",
]


# ----------------------------------------------------------------- pure maths
def td_targets(rewards: Tensor, next_values: Tensor, done: Tensor, *, gamma: float) -> Tensor:
    """One-step Bellman targets ``r + gamma * (1 - done) * V(s')``, detached.

    Args:
        rewards: ``Tensor[N]``, the reward of each transition.
        next_values: ``Tensor[N]``, the (target) value of the next state.
            Where ``done`` it is ignored, even if it is ``inf`` or ``nan``.
        done: ``Tensor[N]`` bool; true for transitions into a terminal state
            (terminated episodes only, never truncated ones).
        gamma: Discount per turn.

    Returns:
        ``Tensor[N]``.
    """
    if not (rewards.shape == next_values.shape == done.shape) or rewards.dim() != 1:
        raise ValueError(f"td_targets: expected three [N] tensors; got {tuple(rewards.shape)}, "
                         f"{tuple(next_values.shape)}, {tuple(done.shape)}")
    future = torch.where(done.bool(), 0.0, next_values.detach())
    return (rewards.detach() + gamma * future).detach()


@torch.no_grad()
def soft_update_(target: nn.Module, online: nn.Module, tau: float) -> None:
    """Polyak averaging in place: ``p_target <- tau * p_online + (1 - tau) * p_target``.

    ``tau = 1`` copies the online network (a hard update); ``tau = 0`` leaves
    the target unchanged. Buffers (e.g. batch-norm statistics) are copied.
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"soft_update_: tau must be in [0, 1]; got {tau}")
    for p_t, p in zip(target.parameters(), online.parameters(), strict=True):
        p_t.lerp_(p, tau)
    for b_t, b in zip(target.buffers(), online.buffers(), strict=True):
        b_t.copy_(b)


def critic_losses(q1: Tensor, q2: Tensor, v: Tensor, q_target: Tensor,
                  v_target: Tensor) -> tuple[Tensor, dict[str, float]]:
    """Mean squared TD errors of both Q heads and of V; targets are detached.

    Returns:
        ``(loss, stats)``: the sum of the three MSEs, and each of them.
    """
    mse = nn.functional.mse_loss
    q_target, v_target = q_target.detach(), v_target.detach()
    q1_loss, q2_loss, v_loss = mse(q1, q_target), mse(q2, q_target), mse(v, v_target)
    stats = {"critic_q1_loss": float(q1_loss.detach()), "critic_q2_loss": float(q2_loss.detach()),
             "critic_v_loss": float(v_loss.detach())}
    return q1_loss + q2_loss + v_loss, stats


# -------------------------------------------------------------------- network
class BagEncoder(nn.Module):
    """Mean of learned token embeddings: ``list of id lists -> Tensor[N, dim]``.

    Example:
        >>> enc = BagEncoder(vocab_size=10, dim=4)
        >>> enc([[1, 2, 3], [4]]).shape
        torch.Size([2, 4])
    """

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.bag = nn.EmbeddingBag(vocab_size, dim, mode="mean")

    def forward(self, ids: Sequence[Sequence[int]]) -> Tensor:
        device = self.bag.weight.device
        flat = torch.tensor([i for row in ids for i in row], dtype=torch.long, device=device)
        lengths = torch.tensor([len(row) for row in ids], dtype=torch.long, device=device)
        offsets = torch.cumsum(lengths, 0) - lengths
        return self.bag(flat, offsets)  # an empty row pools to zeros


class MatchFeatures(nn.Module):
    """Which of the last ``width`` tokens repeat which: ``Tensor[N, width*(width-1)/2]`` of 0/1.

    Feature ``(i, j)``, ``i < j``, is 1 when the tokens ``i`` and ``j`` from the
    end are the same id (padding never matches). Tool use copies: an argument
    repeats a name the latest observation showed, an answer the value a tool
    returned. Learned embeddings tell such a copy from a miss only for the
    pairs of ids they were trained on; equality features tell it for any ids.

    Example:
        >>> MatchFeatures(width=3)([[7, 8, 7], [8]])
        tensor([[0., 1., 0.],
                [0., 0., 0.]])
    """

    pairs: Tensor
    """``Tensor[2, P]``: the index pairs ``(i, j)``, ``i < j``, a buffer (moves with the module)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.register_buffer("pairs", torch.triu_indices(width, width, offset=1), persistent=False)

    @property
    def out_dim(self) -> int:
        return self.width * (self.width - 1) // 2

    def forward(self, ids: Sequence[Sequence[int]]) -> Tensor:
        rows = [[-1] * (self.width - len(r[-self.width:])) + list(r[-self.width:]) for r in ids]
        idx = torch.tensor(rows, dtype=torch.long, device=self.pairs.device)
        a, b = idx[:, self.pairs[0]], idx[:, self.pairs[1]]
        return ((a == b) & (a >= 0)).float()


def _mlp(inp: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, hidden), nn.ReLU(), nn.Linear(hidden, 1))


class TurnCritic(nn.Module):
    """``Q1, Q2(s, a)`` and ``V(s)`` over token-id states and actions.

    Args:
        vocab_size: Size of the token vocabulary.
        dim: Embedding width of the state and action encoders.
        hidden: Width of the heads' hidden layer.
        match: Width of the :class:`MatchFeatures` window; 0: none.

    Example:
        >>> critic = TurnCritic(vocab_size=10, dim=8, hidden=16, match=4)
        >>> q1, q2, v = critic([[1, 2], [3]], [[4], [5, 6]])
        >>> q1.shape, v.shape
        (torch.Size([2]), torch.Size([2]))
    """

    def __init__(self, vocab_size: int, dim: int = 64, hidden: int = 128, match: int = 0) -> None:
        super().__init__()
        self.state_encoder = BagEncoder(vocab_size, dim)
        self.action_encoder = BagEncoder(vocab_size, dim)
        self.match = MatchFeatures(match) if match else None
        s = dim + (self.match.out_dim if self.match else 0)
        self.q1, self.q2, self.v = _mlp(s + dim, hidden), _mlp(s + dim, hidden), _mlp(s, hidden)

    def _state(self, states: Sequence[Sequence[int]], bag: Tensor) -> Tensor:
        """V's input: the bag of ``states``, then their match features if any."""
        return bag if self.match is None else torch.cat([bag, self.match(states)], dim=-1)

    def value(self, states: Sequence[Sequence[int]]) -> Tensor:
        """``V(s)``: ``Tensor[N]``."""
        return self.v(self._state(states, self.state_encoder(states)))[:, 0]

    def forward(self, states: Sequence[Sequence[int]],
                actions: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor, Tensor]:
        """``(Q1(s, a), Q2(s, a), V(s))``, each ``Tensor[N]``.

        With match features, ``Q`` reads them on ``s`` followed by ``a`` (does
        the action copy something the state showed?), ``V`` on ``s`` alone.
        """
        bag, a = self.state_encoder(states), self.action_encoder(actions)
        if self.match is None:
            sa = torch.cat([bag, a], dim=-1)
        else:
            joined = [list(x) + list(y) for x, y in zip(states, actions, strict=True)]
            sa = torch.cat([bag, self.match(joined), a], dim=-1)
        s = self._state(states, bag)
        return self.q1(sa)[:, 0], self.q2(sa)[:, 0], self.v(s)[:, 0]


# ---------------------------------------------------------------- replay buffer
@dataclass(frozen=True)
class TurnTransition:
    """One turn as a transition ``(s, a, r, s', done)``; states and actions are token ids."""

    state: tuple[int, ...]
    action: tuple[int, ...]
    reward: float
    next_state: tuple[int, ...]
    done: bool
    """True when ``s'`` is terminal (the episode terminated after this turn)."""


class ReplayBuffer:
    """A FIFO buffer of turns, sampled uniformly with its own seeded RNG.

    Off-policy: the critic learns from turns of earlier policies too, which is
    what lets it use every turn more than once (ArCHer's sample efficiency).
    ``capacity`` bounds how stale the oldest turn can be.

    Example:
        >>> buf = ReplayBuffer(capacity=2, seed=0)
        >>> buf.extend([TurnTransition((1,), (2,), r, (), True) for r in (0.0, 1.0, 2.0)])
        >>> len(buf), sorted(t.reward for t in buf.sample(2))
        (2, [1.0, 2.0])
    """

    def __init__(self, capacity: int, *, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"ReplayBuffer: capacity must be >= 1; got {capacity}")
        self.items: deque[TurnTransition] = deque(maxlen=capacity)
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.items)

    def extend(self, transitions: Sequence[TurnTransition]) -> None:
        self.items.extend(transitions)

    def sample(self, n: int) -> list[TurnTransition]:
        """``n`` transitions drawn uniformly without replacement (all of them if fewer)."""
        return self.rng.sample(list(self.items), min(n, len(self.items)))

    def state_dict(self) -> dict[str, Any]:
        """Contents and RNG state, as plain lists (``torch.load(weights_only=True)`` reads them)."""
        version, internal, gauss = self.rng.getstate()
        items = [[list(t.state), list(t.action), t.reward, list(t.next_state), t.done]
                 for t in self.items]
        return {"items": items, "rng": [version, list(internal), gauss]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.items.clear()
        for s, a, r, s2, d in state["items"]:
            self.items.append(TurnTransition(tuple(s), tuple(a), float(r), tuple(s2), bool(d)))
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))


def as_columns(transitions: Sequence[TurnTransition]) -> tuple[list[Any], ...]:
    """Transpose transitions into ``(states, actions, rewards, next_states, dones)`` lists."""
    if not transitions:
        return [], [], [], [], []
    return tuple(list(col) for col in zip(*(astuple(t) for t in transitions), strict=True))


# -------------------------------------------------------------------- learner
@dataclass(frozen=True)
class CriticConfig:
    """The turn-level critic of ``turn_gae`` and ``archer`` (ArCHer's high level)."""

    dim: int = option(64, "Embedding width of the critic's bag-of-tokens encoders.")
    hidden: int = option(128, "Hidden width of the Q and V heads.")
    lr: float = option(1e-3, "Critic learning rate (Adam).")
    tau: float = option(0.1, "Polyak rate of the target critic per gradient step (ArCHer: 0.1).")
    updates_per_step: int = option(32, "Critic gradient steps per training step, each on a "
                                   "minibatch drawn from the replay buffer. A terminal reward "
                                   "needs several Polyak-smoothed backups to reach early turns: "
                                   "on KeyChain-v0 the critic took ~400 steps to rank right "
                                   "above wrong turns, 50 training steps at 8 per step.")
    batch_size: int = option(64, "Turns per critic minibatch.")
    buffer_size: int = option(4096, "Replay buffer capacity in turns (bounds their staleness).")
    context_tokens: int = option(128, "The critic sees the last N tokens of each state: the "
                                 "latest observation matters most, and a mean over a long "
                                 "history would wash it out.")
    max_grad_norm: float = option(1.0, "Clip the critic's gradient norm; 0 disables.")
    match_tokens: int = option(48, "Q and V also read which of the last N tokens (of s, and of s "
                               "followed by a) repeat which (0: off). A bag of embeddings cannot "
                               "tell an action that copies the key or value the latest "
                               "observation showed from one that does not, for ids it has not "
                               "seen paired; equality features can (on KeyChain-v0 the critic "
                               "ranks right above wrong turns only with them).")
    warmup_steps: int = option(96, "archer: advantages are 0 (the policy stands still) until "
                               "the critic has taken this many gradient steps. A fresh critic's "
                               "Q - V is not noise but bias (Q of a final answer fits its reward "
                               "at once; Q of a lookup waits for V to propagate), and that bias "
                               "taught the policy to answer early.")
    whiten: bool = option(True, "archer: scale each batch's advantages to mean 0, std 1 over its "
                          "turns, as GRPO's are; raw Q - V is ~0.1, which left the policy's "
                          "step ~10x smaller than GRPO's at the same learning rate.")

    def __post_init__(self) -> None:
        for name in ("dim", "hidden", "updates_per_step", "batch_size", "buffer_size",
                     "context_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"critic.{name} must be >= 1; got {getattr(self, name)}.")
        if not 0.0 < self.tau <= 1.0:
            raise ConfigError(f"critic.tau must be in (0, 1]; got {self.tau}.")
        if self.match_tokens < 0 or self.warmup_steps < 0:
            raise ConfigError(f"critic.match_tokens and critic.warmup_steps must be >= 0; got "
                              f"{self.match_tokens}, {self.warmup_steps}.")
        if self.lr <= 0:
            raise ConfigError(f"critic.lr must be > 0; got {self.lr}.")


def trajectory_transitions(trajectory: Trajectory, *, process_coef: float = 1.0,
                           context_tokens: int | None = None) -> list[TurnTransition]:
    """The turns of an episode as ``(s, a, r, s', done)`` transitions.

    ``s`` is the context before the turn's action (cut to its last
    ``context_tokens``), ``r`` comes from
    :func:`~toolgym.trainers.turn_batch.turn_rewards`, ``s'`` is the next
    turn's context. After the last turn ``done`` is true when the episode
    terminated; a truncated episode's last ``s'`` is the state after its last
    observation, which the TD target bootstraps from.
    """
    def cut(ids: Sequence[int]) -> tuple[int, ...]:
        return tuple(ids[-context_tokens:] if context_tokens else ids)

    contexts = turn_contexts(trajectory)
    rewards = turn_rewards(trajectory, process_coef=process_coef)
    terminated = trajectory.outcome != "truncated"
    out = []
    for k, turn in enumerate(trajectory.turns):
        last = k + 1 == len(trajectory.turns)
        if not last:
            nxt = cut(contexts[k + 1])
        else:
            nxt = () if terminated else cut(after_last_turn(trajectory))
        out.append(TurnTransition(cut(contexts[k]), tuple(turn.action_ids or ()), rewards[k],
                                  nxt, last and terminated))
    return out


class ArCHerCritic:
    """Online and target :class:`TurnCritic`, their optimiser and the replay buffer.

    Args:
        config: Sizes, rates and buffer capacity.
        vocab_size: The policy's vocabulary size (states and actions are its token ids).
        gamma: Discount per turn.
        seed: Seeds the buffer's sampler (the network is initialised from
            torch's global generator, which the trainer seeds).

    Example:
        >>> critic = ArCHerCritic(CriticConfig(dim=4, hidden=8, batch_size=2), vocab_size=8,
        ...                       gamma=1.0)
        >>> critic.buffer.extend([TurnTransition((1,), (2,), 1.0, (), True)] * 2)
        >>> sorted(critic.update())[:2]
        ['critic_buffer', 'critic_q1_loss']
    """

    def __init__(self, config: CriticConfig, *, vocab_size: int, gamma: float,
                 seed: int = 0) -> None:
        self.config, self.gamma = config, gamma
        self.online = TurnCritic(vocab_size, config.dim, config.hidden, config.match_tokens)
        self.target = copy.deepcopy(self.online).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=config.lr)
        self.buffer = ReplayBuffer(config.buffer_size, seed=seed)
        self.updates = 0
        """Gradient steps taken so far (``warmup_steps`` counts these)."""

    def transitions(self, trajectory: Trajectory, *, process_coef: float) -> list[TurnTransition]:
        """:func:`trajectory_transitions` with this critic's context length."""
        return trajectory_transitions(trajectory, process_coef=process_coef,
                                      context_tokens=self.config.context_tokens)

    def observe(self, trajectories: Sequence[Trajectory], *, process_coef: float = 1.0) -> None:
        """Add every turn of ``trajectories`` to the replay buffer."""
        for t in trajectories:
            self.buffer.extend(self.transitions(t, process_coef=process_coef))

    def update(self) -> dict[str, float]:
        """``updates_per_step`` TD steps on buffer minibatches, each with a soft target update.

        Returns:
            Mean losses over the steps, the mean ``Q`` and the buffer size.
        """
        totals: dict[str, float] = defaultdict(float)
        steps = self.config.updates_per_step if len(self.buffer) else 0
        for _ in range(steps):
            stats = self.step(self.buffer.sample(self.config.batch_size))
            for key, value in stats.items():
                totals[key] += value / steps
        return {**totals, "critic_buffer": float(len(self.buffer))}

    def step(self, batch: Sequence[TurnTransition]) -> dict[str, float]:
        """One gradient step of both Q heads and V on ``batch``, then a soft target update."""
        states, actions, rewards, next_states, dones = as_columns(batch)
        with torch.no_grad():
            tq1, tq2, _ = self.target(states, actions)
            next_v = self.target.value(next_states)
            q_target = td_targets(torch.tensor(rewards), next_v, torch.tensor(dones),
                                  gamma=self.gamma)
            v_target = torch.minimum(tq1, tq2)
        q1, q2, v = self.online(states, actions)
        loss, stats = critic_losses(q1, q2, v, q_target, v_target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.online.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        soft_update_(self.target, self.online, self.config.tau)
        self.updates += 1
        return {**stats, "critic_q_mean": float(torch.minimum(q1, q2).detach().mean())}

    @property
    def warm(self) -> bool:
        """Whether the critic has taken ``warmup_steps`` gradient steps."""
        return self.updates >= self.config.warmup_steps

    @torch.no_grad()
    def advantages(self, transitions: Sequence[TurnTransition]) -> Tensor:
        """ArCHer's ``A(s, a) = min(Q1, Q2)(s, a) - V(s)`` of the online critic: ``Tensor[N]``.

        Zeros until the critic is :attr:`warm`; with ``whiten``, scaled to
        mean 0 and std 1 over ``transitions`` (pass a whole batch at once).
        """
        if not transitions or not self.warm:
            return torch.zeros(len(transitions))
        states, actions, *_ = as_columns(transitions)
        q1, q2, v = self.online(states, actions)
        adv = torch.minimum(q1, q2) - v
        return whiten(adv) if self.config.whiten and len(adv) > 1 else adv

    @torch.no_grad()
    def values(self, states: Sequence[Sequence[int]]) -> Tensor:
        """``V(s)`` of the online critic: ``Tensor[N]``."""
        return self.online.value(states) if states else torch.zeros(0)

    @torch.no_grad()
    def turn_values(self, trajectories: Sequence[Trajectory], turn_mask: Tensor, *,
                    process_coef: float) -> tuple[Tensor, Tensor]:
        """``V(s_k)`` before every turn, and ``V`` of the state after each last turn.

        Returns:
            ``(values, after)``: ``Tensor[B, K]`` laid out like ``turn_mask``
            (0 on absent turns), and ``Tensor[B]``, what a truncated episode
            bootstraps from (a terminated one's is never read).
        """
        per_traj = [self.transitions(t, process_coef=process_coef) for t in trajectories]
        values = torch.zeros(turn_mask.shape)
        values[turn_mask] = self.values([x.state for ts in per_traj for x in ts])
        return values, self.values([ts[-1].next_state for ts in per_traj])

    def state_dict(self) -> dict[str, Any]:
        return {"online": self.online.state_dict(), "target": self.target.state_dict(),
                "optimizer": self.optimizer.state_dict(), "buffer": self.buffer.state_dict(),
                "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.online.load_state_dict(state["online"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.buffer.load_state_dict(state["buffer"])
        self.updates = int(state["updates"])
