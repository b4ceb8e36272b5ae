"""Small multi-turn MDPs with exactly known values, and seeded samplers for them.

``Chain``: three turns; the state is ``(k, p)``, turn ``k`` and progress ``p``.
Action 1 ("a good tool call") advances the progress with probability
``advance``, action 0 never does. Turns 0 and 1 pay a process reward
``0.1 * a``; the last turn's reward is the outcome, 1 if the final progress
is at least 2. The behaviour policy plays action 1 with probability
``q[k]``. Every episode has three turns, all starting from ``(0, 0)``.

``Stopping``: the policy controls termination. At turns 0 and 1, action 1
("take another turn") pays 0.3 and goes on, action 0 stops with outcome
0.5. At turn 2, action 1 gets outcome 1 and action 0 outcome 0. The state is
the turn index alone.

True ``Q``/``V`` come from dynamic programming over the exact transition
probabilities, so a test compares an estimator's sample mean per ``(s, a)``
cell with the truth, within a number of standard errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

HORIZON = 3
F64 = torch.float64


@dataclass
class Episodes:
    """``B`` episodes of at most three turns; per-turn tensors are ``[B, 3]``."""

    rewards: Tensor
    mask: Tensor
    states: Tensor
    """Progress ``p`` before each turn (Chain), 0 for Stopping."""
    actions: Tensor
    group_ids: Tensor

    def keys(self) -> Tensor:
        """A state key per turn: ``(k, p)`` packed into one integer."""
        k = torch.arange(HORIZON).expand_as(self.states)
        return 10 * k + self.states


# --------------------------------------------------------------------- Chain
class Chain:
    def __init__(self, q: tuple[float, float, float] = (0.6, 0.5, 0.7), advance: float = 0.8,
                 gamma: float = 1.0) -> None:
        self.q, self.advance, self.gamma = q, advance, gamma
        self.V, self.Q = self._solve()

    def reward(self, k: int, a: int, p_next: int) -> float:
        return 0.1 * a if k < HORIZON - 1 else float(p_next >= 2)

    def _next(self, p: int, a: int) -> list[tuple[int, float]]:
        return [(p, 1.0)] if a == 0 else [(p + 1, self.advance), (p, 1 - self.advance)]

    def _solve(self) -> tuple[dict[tuple[int, int], float], dict[tuple[int, int, int], float]]:
        V: dict[tuple[int, int], float] = {(HORIZON, p): 0.0 for p in range(HORIZON + 1)}
        Q: dict[tuple[int, int, int], float] = {}
        for k in reversed(range(HORIZON)):
            for p in range(k + 1):
                for a in (0, 1):
                    Q[k, p, a] = sum(pr * (self.reward(k, a, p2) + self.gamma * V[k + 1, p2])
                                     for p2, pr in self._next(p, a))
                V[k, p] = self.q[k] * Q[k, p, 1] + (1 - self.q[k]) * Q[k, p, 0]
        return V, Q

    def state_probs(self) -> dict[tuple[int, int], float]:
        """Probability of being in ``(k, p)`` before turn ``k`` under the behaviour policy."""
        probs = {(0, 0): 1.0}
        for k in range(HORIZON - 1):
            for p in range(k + 1):
                for a, pa in ((1, self.q[k]), (0, 1 - self.q[k])):
                    for p2, pr in self._next(p, a):
                        key = (k + 1, p2)
                        probs[key] = probs.get(key, 0.0) + probs.get((k, p), 0.0) * pa * pr
        return probs

    def simulate(self, start_k: Tensor, start_p: Tensor, gen: torch.Generator) -> Episodes:
        """Play from ``(start_k[b], start_p[b])`` to the end; earlier turns are absent."""
        b = start_k.numel()
        rewards = torch.zeros((b, HORIZON), dtype=F64)
        mask = torch.zeros((b, HORIZON), dtype=torch.bool)
        states = torch.zeros((b, HORIZON), dtype=torch.long)
        actions = torch.zeros((b, HORIZON), dtype=torch.long)
        p = start_p.clone()
        for k in range(HORIZON):
            live = start_k <= k
            a = (torch.rand(b, generator=gen, dtype=F64) < self.q[k]).long()
            moved = (torch.rand(b, generator=gen, dtype=F64) < self.advance).long() * a
            p_next = p + moved
            r = 0.1 * a.to(F64) if k < HORIZON - 1 else (p_next >= 2).to(F64)
            rewards[:, k] = torch.where(live, r, 0.0)
            mask[:, k], states[:, k], actions[:, k] = live, torch.where(live, p, 0), a
            p = torch.where(live, p_next, p)
        return Episodes(rewards, mask, states, actions, torch.zeros(b, dtype=torch.long))

    def sample(self, groups: int, group_size: int, seed: int) -> Episodes:
        gen = torch.Generator().manual_seed(seed)
        n = groups * group_size
        eps = self.simulate(torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long),
                            gen)
        eps.group_ids = torch.arange(groups).repeat_interleave(group_size)
        return eps


# ------------------------------------------------------------------ Stopping
class Stopping:
    go_reward, stop_outcome = 0.3, 0.5

    def __init__(self, q: tuple[float, float, float] = (0.5, 0.5, 0.5)) -> None:
        self.q = q
        self.Q: dict[tuple[int, int], float] = {}
        v_next = 0.0
        for k in reversed(range(HORIZON)):
            if k == HORIZON - 1:
                self.Q[k, 1], self.Q[k, 0] = 1.0, 0.0
            else:
                self.Q[k, 1], self.Q[k, 0] = self.go_reward + v_next, self.stop_outcome
            v_next = q[k] * self.Q[k, 1] + (1 - q[k]) * self.Q[k, 0]

    def sample(self, groups: int, group_size: int, seed: int) -> Episodes:
        gen = torch.Generator().manual_seed(seed)
        b = groups * group_size
        rewards = torch.zeros((b, HORIZON), dtype=F64)
        mask = torch.zeros((b, HORIZON), dtype=torch.bool)
        actions = torch.zeros((b, HORIZON), dtype=torch.long)
        live = torch.ones(b, dtype=torch.bool)
        for k in range(HORIZON):
            a = (torch.rand(b, generator=gen, dtype=F64) < self.q[k]).long()
            if k == HORIZON - 1:
                r = a.to(F64)
            else:
                r = torch.where(a == 1, self.go_reward, self.stop_outcome).to(F64)
            rewards[:, k] = torch.where(live, r, 0.0)
            mask[:, k], actions[:, k] = live, a
            live = live & (a == 1)
        return Episodes(rewards, mask, torch.zeros_like(actions), actions,
                        torch.arange(groups).repeat_interleave(group_size))


# ------------------------------------------------------------- cell statistics
def cell_means(values: Tensor, cells: Tensor, valid: Tensor) -> dict[int, tuple[float, float, int]]:
    """Per cell id: ``(mean, standard error, count)`` of ``values`` over the valid entries."""
    out = {}
    v, c = values[valid].to(F64), cells[valid]
    for cell in torch.unique(c).tolist():
        x = v[c == cell]
        se = float(x.std() / x.numel() ** 0.5) if x.numel() > 1 else float("inf")
        out[int(cell)] = (float(x.mean()), se, x.numel())
    return out
