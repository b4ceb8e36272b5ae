"""Trajectories to turn-level inputs: turn rewards, masks, state keys and turn contexts.

The one place that decides what the reward of a turn is. toolgym envs report
the verifier's score twice: as the last step's ``turn_reward`` (so it is on
the last :class:`~toolgym.rollout.trajectory.Turn`) and as the trajectory's
``final_reward``. To count it once, a turn's reward here is

- ``process_coef * turn.reward`` for every turn but the last (process rewards
  from the env or a process reward model), and
- ``final_reward`` for the last turn (the outcome).

An episode counts as terminated unless its outcome is ``truncated``; only a
truncated episode may be bootstrapped from a value after its last turn.

    >>> from toolgym.rollout.trajectory import Trajectory, Turn
    >>> t = Trajectory("e", "t", [Turn("a", [5], reward=0.5), Turn("b", [6], reward=1.0)],
    ...                final_reward=1.0, outcome="success")
    >>> turn_rewards(t, process_coef=0.1)
    [0.05, 1.0]
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from toolgym.rollout.trajectory import Trajectory

__all__ = ["TurnTensors", "after_last_turn", "state_key", "turn_contexts", "turn_rewards",
           "turn_tensors"]


def turn_rewards(trajectory: Trajectory, *, process_coef: float = 1.0) -> list[float]:
    """Reward of each turn: weighted process rewards, then the outcome on the last turn."""
    rewards = [process_coef * float(t.reward) for t in trajectory.turns]
    if rewards:
        rewards[-1] = float(trajectory.final_reward)
    return rewards


def state_key(observation: str) -> int:
    """A stable 63-bit hash of an observation (Python's ``hash`` is salted per process)."""
    digest = hashlib.blake2b(observation.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def _observations_before(trajectory: Trajectory) -> list[str]:
    """What each turn starts from: the task for the first, the env's last reply after that.

    The observation *text* is hashed rather than its token ids because the ids
    of an observation depend on the chat template (a template that rewrites
    history gives no per-turn observation ids at all).
    """
    before = [f"\0task:{trajectory.task_id}"]
    before += [t.observation for t in trajectory.turns[:-1]]
    return before


@dataclass(frozen=True)
class TurnTensors:
    """Turn-level inputs of ``B`` trajectories with at most ``K`` turns.

    Attributes:
        rewards: ``Tensor[B, K]`` from :func:`turn_rewards`, 0 on absent turns.
        mask: ``BoolTensor[B, K]``, true on the turns each trajectory has.
        terminated: ``BoolTensor[B]``, false for truncated episodes.
        state_keys: ``LongTensor[B, K]``, :func:`state_key` of the observation
            each turn starts from (GiGPO's anchor states).
    """

    rewards: Tensor
    mask: Tensor
    terminated: Tensor
    state_keys: Tensor


def turn_tensors(trajectories: Sequence[Trajectory], *, process_coef: float = 1.0) -> TurnTensors:
    """Stack the turn rewards, masks and state keys of ``trajectories`` (left-aligned)."""
    n = len(trajectories)
    k = max((len(t.turns) for t in trajectories), default=0)
    rewards = torch.zeros((n, k), dtype=torch.float32)
    mask = torch.zeros((n, k), dtype=torch.bool)
    keys = torch.zeros((n, k), dtype=torch.long)
    for b, traj in enumerate(trajectories):
        m = len(traj.turns)
        rewards[b, :m] = torch.tensor(turn_rewards(traj, process_coef=process_coef))
        mask[b, :m] = True
        keys[b, :m] = torch.tensor([state_key(o) for o in _observations_before(traj)])
    terminated = torch.tensor([t.outcome != "truncated" for t in trajectories], dtype=torch.bool)
    return TurnTensors(rewards, mask, terminated, keys)


def turn_contexts(trajectory: Trajectory) -> list[list[int]]:
    """The token ids the policy saw before each turn's action: the turn-level states ``s_k``.

    Read from :meth:`Trajectory.samples`, so the context is exactly the
    sequence the policy was conditioned on (one growing sample for an
    append-only template, a fresh prompt per turn for one that rewrites history).
    """
    contexts: list[list[int]] = [[] for _ in trajectory.turns]
    for sample in trajectory.samples():
        seen: set[int] = set()
        for pos, k in enumerate(sample.turn_index):
            if k >= 0 and k not in seen:
                seen.add(k)
                contexts[k] = sample.input_ids[:pos]
    return contexts


def after_last_turn(trajectory: Trajectory) -> list[int]:
    """The state after the last turn: the ids the policy would act from next.

    Only a truncated episode needs it (a value to bootstrap from).
    :func:`~toolgym.rollout.episode.run_episode` records it
    (``Trajectory.next_prompt_ids``: context, last action, the env's reply and
    the generation prompt); for a trajectory without it (built by hand, or
    recorded before it existed) it is the last context, action and ``obs_ids``.
    """
    if trajectory.next_prompt_ids:
        return list(trajectory.next_prompt_ids)
    if not trajectory.turns:
        return []
    last = trajectory.turns[-1]
    return turn_contexts(trajectory)[-1] + list(last.action_ids or []) + list(last.obs_ids)
