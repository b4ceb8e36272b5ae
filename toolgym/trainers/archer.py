"""ArCHer's high-level learner: an off-policy turn critic fed by a replay buffer.

ArCHer runs two RL algorithms at once: this one, value-based and off-policy
at the level of turns, and a token-level policy gradient that uses its
``A(s, a) = Q(s, a) - V(s)`` (:class:`~toolgym.trainers.turn_level.TurnLevelTrainer`
with ``turn_estimator: archer``). Each training step the trainer hands the
new episodes to :meth:`ArCHerCritic.observe` (their turns go into the replay
buffer), runs :meth:`ArCHerCritic.update` (``updates_per_step`` TD steps on
minibatches drawn from the whole buffer, each followed by a soft target
update), then asks for advantages of the new turns. The maths is in
:mod:`toolgym.trainers.critic`.

    >>> from toolgym.rollout.trajectory import Trajectory, Turn
    >>> t = Trajectory("e", "t", [Turn("a", [5], prompt_ids=[1], obs_ids=[2]), Turn("b", [6])],
    ...                final_reward=1.0, outcome="success")
    >>> [(x.state, x.action, x.reward, x.done) for x in trajectory_transitions(t)]
    [((1,), (5,), 0.0, False), ((1, 5, 2), (6,), 1.0, True)]
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from toolgym.errors import ConfigError
from toolgym.rollout.trajectory import Trajectory
from toolgym.trainers.advantages import whiten
from toolgym.trainers.config import option
from toolgym.trainers.critic import (
    ReplayBuffer,
    TurnCritic,
    TurnTransition,
    as_columns,
    critic_losses,
    soft_update_,
    td_targets,
)
from toolgym.trainers.turn_batch import after_last_turn, turn_contexts, turn_rewards

__all__ = ["ArCHerCritic", "CriticConfig", "trajectory_transitions"]


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
