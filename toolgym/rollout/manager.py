"""``RolloutManager``: many episodes in flight, grouped per task, with bounded staleness.

The model must never wait on a slow sandbox: episodes run as independent
asyncio tasks (up to ``concurrency`` at once), so while one waits on a tool,
others generate, and a batching agent (``HFAgent``) gathers whatever requests
are pending into one forward pass. For training, episodes come in groups of
``group_size`` per task (GRPO/RLOO baselines); finished groups wait in a
queue tagged with the policy version that produced them, and
:meth:`RolloutManager.get_batch` drops (or, per config, keeps for importance
weighting) groups older than ``max_staleness`` versions. Infrastructure
failures are retried a few times, then dropped and counted: never scored 0.

A run stops (:class:`~toolgym.errors.InfrastructureFailing`) after
``max_infra_streak`` platform failures in a row: a daemon that is gone. A
platform step that only ran out of time (:class:`~toolgym.errors.SandboxSlow`,
a loaded host) is retried and counted as ``infra_slow`` but is no part of that
streak, so a slow stretch never ends a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolgym.agents.base import Agent
from toolgym.agents.templates import ChatTokenizer
from toolgym.envs.factory import EnvFactory
from toolgym.errors import ConfigError, InfrastructureFailing, ReplayDiverged, SandboxSlow
from toolgym.rollout.episode import run_episode
from toolgym.rollout.replay import PrefixAgent, check_prefix
from toolgym.rollout.trajectory import Trajectory
from toolgym.sandbox.provider import SandboxConfig, SandboxProvider

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RolloutConfig:
    """How rollouts are produced.

    Example:
        >>> c = RolloutConfig(env_id="toolgym/Code-v0", group_size=4)
        >>> c.split, c.queue_size  # 32 episodes in flight = 8 groups, x (max_staleness + 1)
        ('train', 16)
    """

    env_id: str
    group_size: int = 8
    """Episodes per task drawn together (the GRPO group)."""
    concurrency: int = 32
    """Episodes in flight at once."""
    split: str | None = "train"
    """Task split to draw from (None: all tasks)."""
    episode_timeout_s: float = 600.0
    """An episode running longer is cancelled, counted and dropped."""
    max_infra_retries: int = 2
    """Retries of an episode that ended in ``infra_error``, before it is dropped."""
    max_infra_streak: int | None = 32
    """Episode attempts in a row that end in ``infra_error`` (or crash) before the run
    stops with :class:`~toolgym.errors.InfrastructureFailing`; null: never stop. Attempts
    that only ran out of time (a loaded host) neither count nor break the streak."""
    max_staleness: int = 1
    """Groups produced more than this many policy versions ago are stale."""
    stale: str = "drop"
    """``drop`` stale groups, or ``keep`` them for the trainer's importance weights."""
    partial: str = "continue"
    """Episodes in flight when weights change: ``continue`` them or ``abort`` them."""
    max_queued_groups: int | None = None
    """Producer back-pressure: at most this many finished groups wait in the queue. null:
    ``(max_staleness + 1) x`` the groups in flight (``concurrency // group_size``); a
    longer queue only holds groups that go stale before a trainer reaches them."""
    seed: int = 0
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    """Where episodes' sandboxes come from: ``backend`` (docker, local, a plugin's),
    ``pool_size`` and ``max_size`` of the warm pool (null: sized by ``concurrency``)."""

    def __post_init__(self) -> None:
        if self.stale not in ("drop", "keep"):
            raise ConfigError(f"stale must be 'drop' or 'keep', got {self.stale!r}")
        if self.partial not in ("continue", "abort"):
            raise ConfigError(f"partial must be 'continue' or 'abort', got {self.partial!r}")
        if self.group_size < 1 or self.concurrency < 1:
            raise ConfigError("group_size and concurrency must be >= 1")
        if self.max_infra_streak is not None and self.max_infra_streak < 1:
            raise ConfigError(f"max_infra_streak must be >= 1 or null, got "
                              f"{self.max_infra_streak}")
        if self.max_queued_groups is not None and self.max_queued_groups < 1:
            raise ConfigError(f"max_queued_groups must be >= 1 or null, got "
                              f"{self.max_queued_groups}")

    @property
    def queue_size(self) -> int:
        """``max_queued_groups``, or its default (see there)."""
        if self.max_queued_groups is not None:
            return self.max_queued_groups
        return max(1, self.concurrency // self.group_size) * (self.max_staleness + 1)


class RolloutManager:
    """Runs episodes of one env against one agent, concurrently; see the module docstring."""

    def __init__(
        self,
        config: RolloutConfig,
        agent: Agent,
        *,
        chat: ChatTokenizer | None = None,
        provider: SandboxProvider | None = None,
        envs: EnvFactory | None = None,
        on_trajectory: Callable[[Trajectory], None] | None = None,
    ) -> None:
        """Set up the runs; nothing starts until :meth:`run` (or ``async with``).

        Args:
            config: what to run.
            agent: who acts.
            chat: the tokenizer of token-in/token-out prompts.
            provider: the sandbox provider to use instead of ``config.sandbox``'s (the caller
                starts and closes it).
            envs: the factory to make envs with (the caller closes it); default: one of
                ``config.env_id``, ``config.env_kwargs`` and ``provider`` or ``config.sandbox``,
                closed by :meth:`aclose`.
            on_trajectory: called with every finished training or evaluation episode.
        """
        self.config = config
        self.agent = agent
        self.chat = chat
        self._owns_envs = envs is None
        self.envs = envs or EnvFactory(
            config.env_id, provider=provider,
            sandbox=None if provider is not None else config.sandbox,
            **config.env_kwargs)
        self.on_trajectory = on_trajectory
        self.policy_version = 0
        self.stats: Counter[str] = Counter()
        """episodes, success, infra_retries, infra_dropped, infra_slow (attempts that ran out
        of time), setup_retries (set-up steps retried inside episodes), agent_errors,
        timeouts, stale_dropped, aborted, action_tokens."""
        self._slots = asyncio.Semaphore(config.concurrency)
        self._infra_streak = 0
        self._queue: asyncio.Queue[list[Trajectory]] | None = None
        self._producer: asyncio.Task[None] | None = None
        self._in_flight: dict[asyncio.Task[Any], int] = {}
        self._rng = random.Random(config.seed)
        self._start_lock = asyncio.Lock()

    @property
    def provider(self) -> SandboxProvider | None:
        """Where this manager's episodes get their sandboxes (None until the first episode,
        and for envs that hold none)."""
        return self.envs.provider

    # ----------------------------------------------------------- episodes
    async def _ensure_provider(self) -> None:
        """Start the factory's provider, shared by this manager's episodes, once."""
        async with self._start_lock:
            await self.envs.astart(self.config.concurrency)

    async def episode(self, task_id: str, *, seed: int | None = None,
                      group_id: str | None = None) -> Trajectory | None:
        """Run one episode under the concurrency limit, timeout and infra retries.

        Returns:
            The trajectory, or None when it was dropped (timeout, repeated infra errors).
        """
        traj = await self._run(lambda: self.agent, task_id, seed=seed, group_id=group_id)
        if traj is not None:
            self._count(traj)
        return traj

    async def continuation(self, trajectory: Trajectory, turn: int) -> Trajectory | None:
        """Continue ``trajectory`` from the boundary before its turn ``turn`` (VinePPO).

        The env is reset with the episode's seed and task, the recorded turns
        ``0 .. turn-1`` are replayed (:class:`~toolgym.rollout.replay.PrefixAgent`),
        and the agent samples from there on. Continuations are counted apart
        (``continuations``, ``continuation_env_steps``, ``replay_diverged``),
        never as training episodes.

        Returns:
            The whole episode (replayed turns included), or None when it was
            dropped or the replay diverged.
        """
        traj = await self._run(lambda: PrefixAgent(self.agent, trajectory.turns[:turn]),
                               trajectory.task_id, seed=trajectory.seed,
                               group_id=trajectory.group_id)
        if traj is None:
            return None
        try:
            check_prefix(traj, trajectory, turn)
        except ReplayDiverged as exc:
            log.warning("%s", exc)
            self.stats["replay_diverged"] += 1
            return None
        self.stats["continuations"] += 1
        self.stats["continuation_env_steps"] += len(traj.turns)
        return traj

    async def _run(self, make_agent: Callable[[], Agent], task_id: str, *, seed: int | None,
                   group_id: str | None) -> Trajectory | None:
        """One episode with a fresh env (and a fresh agent from ``make_agent`` per attempt)."""
        await self._ensure_provider()
        for attempt in range(self.config.max_infra_retries + 1):
            async with self._slots:
                env = self.envs.make()
                try:
                    # In this task, not wait_for's: on Python 3.11 wait_for runs the episode
                    # in a task of its own and, cancelled twice, leaves it running on
                    # an env the finally below has already closed.
                    async with asyncio.timeout(self.config.episode_timeout_s):
                        traj = await run_episode(
                            env, make_agent(), chat=self.chat, task_id=task_id, seed=seed,
                            group_id=group_id, policy_version=self.policy_version)
                except TimeoutError:
                    self.stats["timeouts"] += 1
                    return None
                except SandboxSlow as exc:  # at reset: a loaded host, not a broken one
                    log.warning("episode of %s: %s", task_id, exc)
                    self.stats["infra_slow"] += 1
                    continue
                except Exception as exc:  # a bug below us must not stop the other episodes
                    log.exception("episode of %s crashed", task_id)
                    self.stats["episode_errors"] += 1
                    self._infra_failed(f"the episode crashed: {exc!r}")
                    continue
                finally:
                    await asyncio.shield(env.aclose())
            if traj.outcome != "infra_error":
                self._infra_streak = 0
                return traj
            if traj.info.get("infra_slow"):
                self.stats["infra_slow"] += 1
            else:
                self._infra_failed(str(traj.info.get("error", "infra_error")))
            retrying = attempt < self.config.max_infra_retries
            self.stats["infra_retries" if retrying else "infra_dropped"] += 1
        return None

    def _infra_failed(self, error: str) -> None:
        """Count one more platform failure in a row; too many stop the run."""
        self._infra_streak += 1
        limit = self.config.max_infra_streak
        if limit is not None and self._infra_streak >= limit:
            raise InfrastructureFailing(self._infra_streak, error)

    def _count(self, traj: Trajectory) -> None:
        self.stats["episodes"] += 1
        self.stats["success"] += traj.outcome == "success"
        self.stats["setup_retries"] += traj.info.get("setup_retries", 0)
        self.stats["agent_errors"] += traj.outcome == "agent_error"
        self.stats["action_tokens"] += traj.num_action_tokens
        if self.on_trajectory is not None:
            self.on_trajectory(traj)

    async def run(self, task_ids: Sequence[str], samples: int = 1) -> AsyncIterator[Trajectory]:
        """Run every task ``samples`` times (evaluation); yield trajectories as they finish."""
        tasks = [asyncio.ensure_future(self.episode(t, seed=self.config.seed + k,
                                                     group_id=f"{t}#eval"))
                 for t in task_ids for k in range(samples)]
        try:
            for done in asyncio.as_completed(tasks):
                traj = await done
                if traj is not None:
                    yield traj
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------ training
    async def start(self) -> None:
        """Start producing groups in the background (training)."""
        if self._producer is not None:
            return
        self._queue = asyncio.Queue(self.config.queue_size)
        await self.envs.adescribe()
        self._task_pool = self.envs.task_ids(self.config.split)
        self._producer = asyncio.ensure_future(self._produce())

    async def _produce(self) -> None:
        assert self._queue is not None
        groups: set[asyncio.Task[None]] = set()
        try:
            while True:
                # Just enough groups in flight to fill the episode slots: more would
                # only wait for slots and go stale.
                while len(groups) * self.config.group_size < self.config.concurrency:
                    task = asyncio.ensure_future(self._group(self._rng.choice(self._task_pool)))
                    groups.add(task)
                    task.add_done_callback(groups.discard)
                done, _ = await asyncio.wait(groups, return_when=asyncio.FIRST_COMPLETED)
                # A group that failed (InfrastructureFailing) ends production. Read every
                # failure of the round: one left unread is logged at garbage collection.
                failed = [exc for task in done if not task.cancelled()
                          and (exc := task.exception()) is not None]
                if failed:
                    raise failed[0]
        finally:
            for task in groups:
                task.cancel()
            await asyncio.gather(*groups, return_exceptions=True)

    async def _group(self, task_id: str) -> None:
        assert self._queue is not None
        gid = f"{task_id}#{uuid.uuid4().hex[:8]}"
        version = self.policy_version
        seeds = [self._rng.randrange(2**31) for _ in range(self.config.group_size)]
        runs = [asyncio.ensure_future(self.episode(task_id, seed=s, group_id=gid)) for s in seeds]
        for r in runs:
            self._in_flight[r] = version
        try:
            trajs = [t for t in await asyncio.gather(*runs) if t is not None]
        except BaseException:
            # gather raises as soon as its first episode ends cancelled (or raises
            # InfrastructureFailing); the others may still run or be closing their envs.
            # Cancel only those not cancelled yet (a second cancel would cut their
            # clean-up short), and wait for all of them.
            for r in runs:
                if not r.cancelling():
                    r.cancel()
            await asyncio.gather(*runs, return_exceptions=True)
            raise
        finally:
            for r in runs:
                self._in_flight.pop(r, None)
        if trajs:
            await self._queue.put(trajs)

    def set_policy_version(self, version: int) -> None:
        """New weights are live; with ``partial="abort"`` older episodes in flight are cancelled."""
        self.policy_version = version
        if self.config.partial == "abort":
            for run, started in list(self._in_flight.items()):
                if started < version and not run.done():
                    run.cancel()
                    self.stats["aborted"] += 1

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps: the task-sampling RNG and the policy version."""
        version, internal, gauss = self._rng.getstate()
        return {"policy_version": self.policy_version, "rng": [version, list(internal), gauss]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (resume continues the same task sequence)."""
        self.policy_version = int(state["policy_version"])
        if "rng" in state:
            version, internal, gauss = state["rng"]
            self._rng.setstate((version, tuple(internal), gauss))

    def staleness(self, group: Sequence[Trajectory]) -> int:
        """How many versions behind the oldest turn of the group is."""
        versions = [t.policy_version for t in group if t.policy_version is not None]
        return self.policy_version - min(versions) if versions else 0

    async def get_batch(self, num_groups: int) -> list[list[Trajectory]]:
        """Wait for ``num_groups`` groups fresh enough to train on.

        Raises:
            RuntimeError: :meth:`start` was not called.
            InfrastructureFailing: production stopped: episode after episode failed in
                the platform (it would otherwise wait here forever).
        """
        if self._queue is None:
            raise RuntimeError("call start() before get_batch()")
        batch: list[list[Trajectory]] = []
        while len(batch) < num_groups:
            group = await self._next_group()
            lag = self.staleness(group)
            self.stats["max_staleness_seen"] = max(self.stats["max_staleness_seen"], lag)
            if lag > self.config.max_staleness and self.config.stale == "drop":
                self.stats["stale_dropped"] += len(group)
                continue
            batch.append(group)
        return batch

    async def _next_group(self) -> list[Trajectory]:
        """The next finished group, or the producer's failure raised."""
        assert self._queue is not None and self._producer is not None
        get = asyncio.ensure_future(self._queue.get())
        try:
            await asyncio.wait({get, self._producer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not get.done():
                get.cancel()
        if get.done() and not get.cancelled():
            return get.result()
        self._producer.result()  # raises what stopped it
        raise RuntimeError("the rollout producer stopped")

    async def aclose(self) -> None:
        """Stop producing; episodes in flight are cancelled and their sandboxes released."""
        if self._producer is not None:
            self._producer.cancel()
            # InfrastructureFailing was raised to get_batch already
            with contextlib.suppress(asyncio.CancelledError, InfrastructureFailing):
                await self._producer
            self._producer = None
        if self._owns_envs:
            await self.envs.aclose()
