"""A warm pool of sandboxes: acquire in microseconds, release clean.

Starting a container costs ~0.5 s; an episode cannot wait for that on every
reset. :class:`SandboxPool` keeps ``size`` sandboxes of one spec started and
idle, hands one out on :meth:`~SandboxPool.acquire`, and on
:meth:`~SandboxPool.release` makes it clean again (every process of the agent's
user killed, the work dirs wiped) or, after ``max_uses`` or on any doubt,
replaces it with a fresh one in the background.

Memory is bounded too: every sandbox's cap is reserved from the pool's own
``memory_budget_mb`` (when set) and from the process-wide budget of its
backend's host (:meth:`~toolgym.sandbox.backends.SandboxBackend.memory_budget`)
before it starts, and given back when it is gone; past either budget, acquire
waits like past ``max_size``.

The pool is a :class:`~toolgym.sandbox.provider.SandboxProvider` and gets its
sandboxes from a :class:`~toolgym.sandbox.backends.SandboxBackend` (Docker by
default), so it holds any :class:`~toolgym.sandbox.base.Sandbox`.

A pool belongs to the event loop it was started on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass

from toolgym.errors import ConfigError, PoolExhausted, SandboxError
from toolgym.sandbox.backends import SandboxBackend, get_backend
from toolgym.sandbox.base import Sandbox
from toolgym.sandbox.budget import BUDGET_POLL_S, MemoryBudget, Reservation, check_against_host
from toolgym.sandbox.spec import SandboxSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolConfig:
    """Sizes and timeouts of a :class:`SandboxPool`.

    Example:
        >>> PoolConfig(size=4, max_size=8).max_uses
        50
    """

    size: int = 4
    """Sandboxes kept started and idle, ready for acquire."""
    max_size: int = 16
    """Most sandboxes alive at once (idle + in use); acquire waits beyond it."""
    max_uses: int = 50
    """Episodes a sandbox serves before it is replaced by a fresh container."""
    acquire_timeout_s: float = 120.0
    """How long acquire waits for a free sandbox before :class:`PoolExhausted`."""
    health_check_after_s: float = 5.0
    """A sandbox idle longer than this is pinged before it is handed out."""
    reap_orphans: bool = True
    """Remove sandboxes of dead owner processes when the pool starts."""
    memory_budget_mb: int | None = None
    """Most MiB of memory caps this pool's sandboxes may hold together (None: only the
    process-wide budget applies). At most the host's memory."""

    def __post_init__(self) -> None:
        if not 0 <= self.size <= self.max_size or self.max_size < 1:
            raise ValueError(
                f"need 0 <= size <= max_size and max_size >= 1, got size={self.size}, "
                f"max_size={self.max_size}"
            )


class SandboxPool:
    """Warm, bounded, self-healing pool of sandboxes of one spec, from one backend.

    Example:
        >>> async def main():  # doctest: +SKIP
        ...     async with SandboxPool(SandboxSpec(), PoolConfig(size=2)) as pool:
        ...         async with pool.sandbox() as sb:
        ...             return (await sb.aexec("echo hi")).stdout
    """

    def __init__(
        self,
        spec: SandboxSpec | None = None,
        config: PoolConfig | None = None,
        *,
        backend: SandboxBackend | str = "docker",
    ) -> None:
        self.spec = spec or SandboxSpec()
        self.config = config or PoolConfig()
        self.backend = get_backend(backend) if isinstance(backend, str) else backend
        self._idle: list[tuple[Sandbox, float]] = []
        self._busy: set[Sandbox] = set()
        self._uses: dict[str, int] = {}
        self._creating = 0
        self._changes = 0
        """Times a sandbox came back, started or went (what :meth:`acquire` waits on)."""
        self._cond: asyncio.Condition | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._memory = Reservation([], self.spec.limits.memory_mb)
        self.events: Counter[str] = Counter()
        """created, recycled, health_failed, reset_failed, orphans_reaped, create_failed."""

    # ----------------------------------------------------------- life cycle
    async def astart(self) -> SandboxPool:
        """Reap orphaned sandboxes, then start ``size`` sandboxes concurrently (as many
        as the global memory budget has room for; the rest when it frees up).

        Raises:
            ConfigError: a budget exceeds the host's memory, or cannot hold ``size``
                sandboxes of this spec.
        """
        self._memory = await asyncio.to_thread(self._make_reservation)
        self._cond = asyncio.Condition()
        if self.config.reap_orphans:
            self.events["orphans_reaped"] += await asyncio.to_thread(self.backend.reap_orphans)
        async with self._cond:
            starting = 0
            while starting < self.config.size and self._reserve():
                starting += 1
            self._creating += starting
        results = await asyncio.gather(
            *(self._create() for _ in range(starting)), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.aclose()
            raise errors[0]
        return self

    async def aclose(self) -> None:
        """Remove every sandbox of the pool, idle or in use. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        # Let starts and removals in flight finish: a cancelled start would leave
        # its container behind. Sandboxes that finish starting now close themselves.
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        sandboxes = [sb for sb, _ in self._idle] + list(self._busy)
        self._idle.clear()
        self._busy.clear()
        for _ in sandboxes:
            self._unreserve()
        await asyncio.shield(
            asyncio.gather(*(sb.aclose() for sb in sandboxes), return_exceptions=True)
        )

    async def __aenter__(self) -> SandboxPool:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --------------------------------------------------------------- counts
    @property
    def total(self) -> int:
        """Sandboxes alive or being started."""
        return len(self._idle) + len(self._busy) + self._creating

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def in_use(self) -> int:
        return len(self._busy)

    # -------------------------------------------------------------- acquire
    async def acquire(self, timeout: float | None = None) -> Sandbox:
        """Hand out a clean sandbox: a warm one at once, else a new one, else wait.

        A caller waits as long as the pool makes progress: the ``timeout`` runs
        from the last time a sandbox came back, started or went, or memory came back
        to a budget it shares with other providers of the process (a pool at its
        ``max_size`` or memory budget whose sandboxes are busy with live episodes
        is a queue, not a fault, however long the queue is).

        Raises:
            PoolExhausted: no sandbox came free, started or went for ``timeout``
                seconds (default ``config.acquire_timeout_s``).
        """
        if self._cond is None or self._closed:
            raise SandboxError(
                "pool is not started (use `async with pool` or `await pool.astart()`)"
            )
        timeout = self.config.acquire_timeout_s if timeout is None else timeout
        deadline, seen = time.monotonic() + timeout, self._progress()
        sandbox: Sandbox | None
        while True:
            async with self._cond:
                while True:
                    if (now := self._progress()) != seen:  # the queue moved: wait on from now
                        deadline, seen = time.monotonic() + timeout, now
                    if self._idle:
                        sandbox, since = self._idle.pop()
                        break
                    blocked = "max_size" if self.total >= self.config.max_size else None
                    if blocked is None:
                        blocked = self._memory.try_reserve()
                        if blocked is None:
                            self._creating += 1
                            sandbox, since = None, 0.0
                            break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise PoolExhausted(self.config.max_size, timeout,
                                            None if blocked == "max_size" else blocked)
                    wait = remaining if blocked == "max_size" else min(remaining, BUDGET_POLL_S)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._cond.wait(), wait)
            if sandbox is None:
                sandbox = await self._create(idle=False)
            elif (
                time.monotonic() - since > self.config.health_check_after_s
                and not await self._healthy(sandbox)
            ):
                continue
            self._busy.add(sandbox)
            self._top_up()
            return sandbox

    async def release(self, sandbox: Sandbox, *, recycle: bool = False) -> None:
        """Give ``sandbox`` back: cleaned for the next user, or replaced by a fresh one.

        Args:
            sandbox: one this pool handed out (anything else is ignored).
            recycle: replace the container instead of cleaning it (do this on
                any doubt: an exception, a cancelled episode). A sandbox that
                broke the supervisor protocol (``tainted``) is always replaced.
        """
        if sandbox not in self._busy:
            return
        uses = self._uses.get(sandbox.id, 0) + 1
        self._uses[sandbox.id] = uses
        recycle = recycle or sandbox.tainted
        if not recycle and uses < self.config.max_uses and not self._closed:
            try:
                await sandbox.areset()
            except (SandboxError, RuntimeError):
                self.events["reset_failed"] += 1
            else:
                self._busy.discard(sandbox)
                async with self._notify():
                    self._idle.append((sandbox, time.monotonic()))
                return
        self._busy.discard(sandbox)
        self.events["recycled"] += 1
        self._spawn(self._destroy(sandbox))
        self._top_up()
        async with self._notify():
            pass

    @contextlib.asynccontextmanager
    async def sandbox(self, timeout: float | None = None) -> AsyncIterator[Sandbox]:
        """``async with pool.sandbox() as sb:`` acquire, then release (recycled on error)."""
        sb = await self.acquire(timeout)
        ok = False
        try:
            yield sb
            ok = True
        finally:
            await asyncio.shield(self.release(sb, recycle=not ok))

    # ------------------------------------------------------------- internals
    @contextlib.asynccontextmanager
    async def _notify(self) -> AsyncIterator[None]:
        assert self._cond is not None
        async with self._cond:
            yield
            self._changes += 1
            self._cond.notify_all()

    def _progress(self) -> tuple[int, int]:
        """The pool's own changes and the releases in its memory budgets, which other
        pools and on-demand providers of the process share: either moving is a queue."""
        return self._changes, self._memory.releases()

    def _make_reservation(self) -> Reservation:
        mb = self.spec.limits.memory_mb
        budgets = [("process-wide memory budget", self.backend.memory_budget())]
        if self.config.memory_budget_mb is not None:
            check_against_host(self.config.memory_budget_mb, "the pool's memory_budget_mb",
                               self.backend.host_memory_mb())
            budgets.append(("pool's memory_budget_mb",
                            MemoryBudget(self.config.memory_budget_mb)))
        for what, budget in budgets:
            if self.config.size * mb > budget.limit_mb:
                raise ConfigError(
                    f"The {what} ({budget.limit_mb} MiB) cannot hold size={self.config.size} "
                    f"sandboxes of memory_mb={mb}. Lower size or memory_mb, "
                    "or raise the budget."
                )
        return Reservation(budgets, mb)

    def _reserve(self) -> bool:
        return self._memory.try_reserve() is None

    def _unreserve(self) -> None:
        self._memory.release()

    async def _create(self, idle: bool = True) -> Sandbox:
        """Start one sandbox; ``_creating`` and its memory were already counted by the caller.

        Cancel-safe: the backend's start runs in a task of its own, and a caller
        cancelled before it got the sandbox leaves it to :meth:`_abandon`, which
        closes it when it is made. Once the sandbox exists, it is recorded without
        an await, so no cancellation can fall between making it and owning it.
        """
        making = asyncio.ensure_future(self.backend.acreate(self.spec))
        try:
            sandbox = await asyncio.shield(making)
        except asyncio.CancelledError:
            self._spawn(self._abandon(making))
            raise
        except BaseException:
            self.events["create_failed"] += 1
            self._unreserve()
            self._creating -= 1
            self._spawn(self._wake())
            raise
        self.events["created"] += 1
        self._creating -= 1
        if self._closed:
            self._spawn(self._destroy(sandbox))
        elif idle:
            self._idle.append((sandbox, time.monotonic()))
        self._spawn(self._wake())
        return sandbox

    async def _abandon(self, making: asyncio.Future[Sandbox]) -> None:
        """Close the sandbox a cancelled caller was starting, once it is made."""
        try:
            sandbox = await making
        except BaseException:
            self.events["create_failed"] += 1
            self._unreserve()
            self._creating -= 1
            await self._wake()
            return
        self.events["created"] += 1
        self._creating -= 1
        await self._destroy(sandbox)  # unreserves and wakes waiters

    async def _wake(self) -> None:
        """Tell waiters in :meth:`acquire` that counts changed."""
        if self._cond is not None:
            async with self._notify():
                pass

    def _top_up(self) -> None:
        """Start sandboxes in the background until ``size`` are idle or starting."""
        want = min(self.config.size - len(self._idle) - self._creating,
                   self.config.max_size - self.total)
        for _ in range(max(0, want)):
            if not self._reserve():
                return
            self._creating += 1
            self._spawn(self._create_quietly())

    async def _create_quietly(self) -> None:
        with contextlib.suppress(Exception):
            await self._create()

    async def _healthy(self, sandbox: Sandbox) -> bool:
        try:
            await sandbox.aping(timeout=5.0)
            return True
        except SandboxError:
            self.events["health_failed"] += 1
            self._spawn(self._destroy(sandbox))
            return False

    async def _destroy(self, sandbox: Sandbox) -> None:
        self._uses.pop(sandbox.id, None)
        try:
            await sandbox.aclose()
        finally:
            self._unreserve()
            if not self._closed:
                await self._wake()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[None]) -> None:
    """A background removal that failed (the daemon is gone) is logged, not left unread."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("sandbox pool: a background start or removal failed: %r", exc)
