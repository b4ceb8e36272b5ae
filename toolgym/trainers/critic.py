"""ArCHer's utterance-level critic: the network, its TD maths, and a replay buffer of turns.

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
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "BagEncoder",
    "MatchFeatures",
    "ReplayBuffer",
    "TurnCritic",
    "TurnTransition",
    "as_columns",
    "critic_losses",
    "soft_update_",
    "td_targets",
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
