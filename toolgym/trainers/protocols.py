"""What a trainer needs of its rollout source and of the agent that samples for it.

:class:`~toolgym.trainers.base.Trainer` talks to two things it does not own
the code of: the *rollout source* its batches come from
(:class:`~toolgym.rollout.manager.RolloutManager`, or a replay of recorded
batches in tests), and the *agent* that source samples from. Each is a
protocol here, so a type checker sees every call the trainer makes, and an
optional capability is one ``isinstance`` check on a runtime-checkable
protocol, not a probe for a method name:

- :class:`RolloutSource`: every source. :class:`ContinuingSource` adds
  ``continuation`` (VinePPO's Monte-Carlo values need it).
- :class:`TrainableAgent`: an agent that samples from the policy being trained
  (:class:`~toolgym.agents.hf.HFAgent`, :class:`~toolgym.agents.vllm.VLLMAgent`):
  the trainer pushes new weights to it, stamps its policy version, reads its
  throughput, and checkpoints its sampling stream. Any other agent (an HTTP
  endpoint with its own ``weight_sync``, a scripted agent) is sampled from
  and left alone. :class:`SharedModelAgent` adds the lock of an agent that
  samples from the very module being trained (``weight_sync: shared``).

    >>> class Scripted:  # samples, but has no weights to update
    ...     async def act(self, conversation): ...
    >>> isinstance(Scripted(), TrainableAgent)
    False
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import torch

from toolgym.agents.base import Agent
from toolgym.rollout.trajectory import Trajectory

__all__ = ["ContinuingSource", "GenerationCounts", "RolloutSource", "SharedModelAgent",
           "TrainableAgent"]


@runtime_checkable
class RolloutSource(Protocol):
    """Where a trainer's batches of groups come from, in the background of its updates."""

    @property
    def stats(self) -> Mapping[str, float]:
        """Running counters (episodes, stale_dropped, ...), logged as ``rollout_<name>``;
        may be empty."""
        ...

    async def start(self) -> None:
        """Begin producing episodes (called once, before the first :meth:`get_batch`)."""
        ...

    async def get_batch(self, num_groups: int) -> list[list[Trajectory]]:
        """The next ``num_groups`` groups (episodes of one task each) fit to train on."""
        ...

    def set_policy_version(self, version: int) -> None:
        """New weights are live: episodes are stamped, and their staleness counted, from here."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps (task-sampling RNG, policy version), restored on resume."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Undo :meth:`state_dict`."""
        ...

    async def aclose(self) -> None:
        """Stop producing and release what the source holds (envs, sandboxes)."""
        ...


@runtime_checkable
class ContinuingSource(RolloutSource, Protocol):
    """A source that can continue a recorded episode from one of its turn boundaries."""

    async def continuation(self, trajectory: Trajectory, turn: int) -> Trajectory | None:
        """Replay ``trajectory``'s first ``turn`` turns, then let the current policy carry on;
        None when the replay diverged (the env did not repeat itself)."""
        ...


class GenerationCounts(Protocol):
    """Counters of an agent's generation, for the trainer's tokens-per-second metric."""

    @property
    def tokens(self) -> int:
        """Tokens sampled so far."""
        ...

    @property
    def seconds(self) -> float:
        """Seconds spent sampling them."""
        ...


@runtime_checkable
class TrainableAgent(Agent, Protocol):
    """An agent that samples from the policy being trained (see the module docstring)."""

    policy_version: int
    """The weights' version, stamped on every turn (staleness is counted from it)."""

    @property
    def stats(self) -> GenerationCounts:
        """Its generation counters."""
        ...

    async def aupdate_weights(self, state_dict: Mapping[str, torch.Tensor] | None = None, *,
                              version: int | None = None) -> int:
        """Load new weights between generate batches (None: the model is shared, only bump
        the version); return the new version."""
        ...

    def sampler_state(self) -> dict[str, int]:
        """Where its seeded sampling stream is, so a resumed run does not replay old draws."""
        ...

    def load_sampler_state(self, state: Mapping[str, int]) -> None:
        """Undo :meth:`sampler_state`."""
        ...

    async def aclose(self) -> None:
        """Release the backend (worker threads, an engine)."""
        ...


@runtime_checkable
class SharedModelAgent(TrainableAgent, Protocol):
    """A trainable agent that samples from the very module being trained."""

    @property
    def lock(self) -> AbstractContextManager[Any]:
        """Held by one generate call or one weight update at a time; the trainer holds it for
        a whole update, so no generate call sees half-updated weights."""
        ...
