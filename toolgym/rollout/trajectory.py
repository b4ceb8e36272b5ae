"""Trajectories: the exact tokens of an episode, turn by turn, and their JSONL form.

A trajectory stores the ids the policy sampled, verbatim, and the ids of every
observation the environment appended, as the chat template renders them;
nothing is re-tokenised from text. :meth:`Trajectory.samples` turns it into
training sequences with a loss mask that is 1 on sampled tokens only. An
append-only chat template gives one sample per episode; a template that
rewrites earlier turns gives one sample per turn (``Turn.prompt_ids`` then
starts a new sample).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from toolgym.jsonl import read_records


@dataclass
class Turn:
    """One policy action and what the environment said back."""

    action_text: str
    action_ids: list[int] | None = None
    """Sampled ids, verbatim; None when the backend did not report them."""
    action_logprobs: list[float] | None = None
    """Behaviour log-probabilities of ``action_ids`` (for importance weights)."""
    prompt_ids: list[int] = field(default_factory=list)
    """Ids that start a training sample before this action (the first turn, or every turn
    of a non-append-only template); empty when the action continues the previous sample."""
    obs_ids: list[int] = field(default_factory=list)
    """Ids the environment appended after this action, up to the next generation prompt."""
    observation: str = ""
    reward: float = 0.0
    """Per-turn reward channel (process rewards); the outcome reward is on the trajectory."""
    policy_version: int | None = None
    finish_reason: str = "stop"
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Sample:
    """One training sequence: ids, loss mask (1 = sampled by the policy) and behaviour logprobs."""

    input_ids: list[int]
    loss_mask: list[int]
    logprobs: list[float]
    """Behaviour logprob per position (0.0 where the mask is 0)."""
    turn_index: list[int]
    """Which turn each position's action belongs to (-1 outside actions)."""


@dataclass
class Trajectory:
    """A whole episode: turns, outcome and where it came from.

    Example:
        >>> t = Trajectory(env_id="e", task_id="t", turns=[Turn("hi", [5, 6], [-.1, -.2], [1, 2])])
        >>> t.samples()[0].loss_mask
        [0, 0, 1, 1]
    """

    env_id: str
    task_id: str
    turns: list[Turn] = field(default_factory=list)
    final_reward: float = 0.0
    outcome: str | None = None
    seed: int | None = None
    group_id: str | None = None
    """Episodes of one task sampled together share a group id (GRPO / RLOO baselines)."""
    policy_version: int | None = None
    """Oldest policy version that produced one of the turns."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    timings: dict[str, float] = field(default_factory=dict)
    """env_s (time in env.step/reset), model_s (time in agent.act), wall_s."""
    info: dict[str, Any] = field(default_factory=dict)
    next_prompt_ids: list[int] = field(default_factory=list)
    """For a truncated episode, the exact ids the policy would continue from next: the
    last sample with the env's last reply and the generation prompt (what a critic
    bootstraps from); empty when the episode ended or the reply was not recorded."""

    @property
    def trainable(self) -> bool:
        """Every turn has exact ids, and the episode did not fail for infrastructure reasons."""
        return self.outcome != "infra_error" and all(t.action_ids is not None for t in self.turns)

    @property
    def has_behaviour_logprobs(self) -> bool:
        """Every turn has one sampler log-prob per sampled id (what an RL ratio needs).

        A backend may return ids without aligned logprobs (an OpenAI-compatible
        server asked for ids only); a trainer must not read those as logprob 0.
        """
        return all(t.action_logprobs is not None
                   and len(t.action_logprobs) == len(t.action_ids or ()) for t in self.turns)

    @property
    def num_action_tokens(self) -> int:
        return sum(len(t.action_ids or ()) for t in self.turns)

    def samples(self) -> list[Sample]:
        """Training sequences: one per episode, or one per turn for non-append-only templates.

        Raises:
            ValueError: the trajectory is not trainable (ids missing).
        """
        if not all(t.action_ids is not None for t in self.turns):
            raise ValueError(f"trajectory {self.id} has turns without token ids: not trainable")
        out: list[Sample] = []
        for i, turn in enumerate(self.turns):
            if turn.prompt_ids or not out:
                out.append(Sample([], [], [], []))
            s = out[-1]
            _extend(s, turn.prompt_ids, 0, None, -1)
            _extend(s, turn.action_ids or [], 1, turn.action_logprobs, i)
            next_starts_sample = i + 1 < len(self.turns) and bool(self.turns[i + 1].prompt_ids)
            if not next_starts_sample and i + 1 < len(self.turns):
                _extend(s, turn.obs_ids, 0, None, -1)
        return out

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> Trajectory:
        data = json.loads(line)
        data["turns"] = [Turn(**t) for t in data["turns"]]
        return cls(**data)


def _extend(s: Sample, ids: list[int], mask: int, logprobs: list[float] | None, turn: int) -> None:
    s.input_ids.extend(ids)
    s.loss_mask.extend([mask] * len(ids))
    s.logprobs.extend(logprobs if logprobs is not None else [0.0] * len(ids))
    s.turn_index.extend([turn] * len(ids))


def write_jsonl(path: str | Path, trajectories: Iterable[Trajectory]) -> None:
    """Append trajectories to ``path``, one line each, each written whole and flushed.

    A line is written with a single ``write`` on an ``O_APPEND`` descriptor, so
    an interrupted run leaves whole lines behind (at worst a torn last line,
    which :func:`read_jsonl` skips).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for t in trajectories:
            os.write(fd, (t.to_json() + "\n").encode())
    finally:
        os.close(fd)


def read_jsonl(path: str | Path) -> Iterator[Trajectory]:
    """Read trajectories back, past damage: a torn last line (a killed writer) is
    skipped, an unreadable line in the middle too, with a warning
    (:func:`toolgym.jsonl.read_records`); every readable trajectory is kept."""
    return read_records(path, Trajectory.from_json)
