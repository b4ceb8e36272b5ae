"""Where an episode gets its sandbox: the ``SandboxProvider`` protocol and the plain provider.

An env asks a provider for a clean sandbox when an episode starts
(:meth:`~SandboxProvider.acquire`) and hands it back when it ends
(:meth:`~SandboxProvider.release`, ``recycle=True`` on any doubt). Two
providers ship: :class:`~toolgym.sandbox.pool.SandboxPool` keeps sandboxes
warm for many concurrent episodes; :class:`OnDemandSandboxes` starts one
when asked, for a single env or a short run where a warm pool is not worth
its start-up. Both get their sandboxes from a
:class:`~toolgym.sandbox.backends.SandboxBackend`, so neither the env nor the
provider's caller names Docker. :func:`build_provider` makes the one a
``sandbox:`` config section (:class:`SandboxConfig`) asks for.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from toolgym.errors import ConfigError, SandboxError
from toolgym.sandbox.backends import SandboxBackend, check_backend_name, get_backend
from toolgym.sandbox.base import Sandbox
from toolgym.sandbox.budget import Reservation
from toolgym.sandbox.spec import SandboxSpec

BUDGET_WAIT_S = 120.0
"""How long :meth:`OnDemandSandboxes.acquire` without a timeout waits for memory."""


@runtime_checkable
class SandboxProvider(Protocol):
    """Hands out clean sandboxes of one spec and takes them back."""

    spec: SandboxSpec

    async def astart(self) -> SandboxProvider:
        """Get ready to hand out sandboxes (a pool starts its warm ones); returns itself."""
        ...

    async def acquire(self, timeout: float | None = None) -> Sandbox:
        """A clean sandbox for one episode.

        Raises:
            SandboxError: none could be had (no backend, exhausted, not started).
        """
        ...

    async def release(self, sandbox: Sandbox, *, recycle: bool = False) -> None:
        """Take ``sandbox`` back; ``recycle``: destroy it rather than clean it for reuse."""
        ...

    async def aclose(self) -> None:
        """Destroy every sandbox it holds. Safe to call twice."""
        ...


class OnDemandSandboxes:
    """Starts a sandbox when one is asked for; keeps the last one released, made clean.

    No warm-up and no background work: the first :meth:`acquire` waits for a
    sandbox to start, and a released sandbox is reset (its processes killed, its
    work dirs wiped) and handed to the next :meth:`acquire`, or destroyed when
    ``recycle`` is asked, it is ``tainted``, the reset fails, or ``reuse`` is off
    (a fresh sandbox for every episode). The env's provider when it is given none.

    Each sandbox alive (handed out or spare) holds its memory cap in the
    backend's process-wide budget, which every pool and provider of the process
    shares (:mod:`toolgym.sandbox.budget`): past it, :meth:`acquire` waits.

    Example:
        >>> provider = OnDemandSandboxes(SandboxSpec(), backend="local")
        >>> provider.backend.name, provider.reuse
        ('local', True)
    """

    def __init__(self, spec: SandboxSpec | None = None,
                 backend: SandboxBackend | str = "docker", *, reuse: bool = True) -> None:
        self.spec = spec or SandboxSpec()
        self.backend = get_backend(backend) if isinstance(backend, str) else backend
        self.reuse = reuse
        self._spare: Sandbox | None = None
        self._out: set[Sandbox] = set()
        self._memory: Reservation | None = None

    def __deepcopy__(self, memo: dict[int, object]) -> OnDemandSandboxes:
        """A provider of the same spec and backend holding none of this one's sandboxes
        (``gymnasium.make`` deep-copies the kwargs it re-makes an env from)."""
        return OnDemandSandboxes(self.spec, self.backend, reuse=self.reuse)

    async def astart(self) -> OnDemandSandboxes:
        """Nothing to start: sandboxes start on :meth:`acquire`."""
        return self

    async def acquire(self, timeout: float | None = None) -> Sandbox:
        """The spare sandbox if there is one, else a new one once the memory budget has
        room for it (``timeout`` bounds the wait and the start).

        Raises:
            PoolExhausted: the process-wide memory budget stayed spent for ``timeout``
                (default :data:`BUDGET_WAIT_S`).
            ConfigError: one sandbox's memory cap is larger than the whole budget.
            SandboxError: the backend could not start one.
        """
        sandbox, self._spare = self._spare, None
        if sandbox is None:
            if self._memory is None:
                budget = await asyncio.to_thread(self.backend.memory_budget)
                self._memory = Reservation([("process-wide memory budget", budget)],
                                           self.spec.limits.memory_mb)
            deadline = time.monotonic() + (BUDGET_WAIT_S if timeout is None else timeout)
            await self._memory.reserve(deadline - time.monotonic())
            try:
                start = self.backend.acreate(self.spec)
                sandbox = await (start if timeout is None
                                 else asyncio.wait_for(start, deadline - time.monotonic()))
            except BaseException:
                self._memory.release()
                raise
        self._out.add(sandbox)
        return sandbox

    async def release(self, sandbox: Sandbox, *, recycle: bool = False) -> None:
        """Reset ``sandbox`` and keep it for the next episode, or destroy it (see the class)."""
        if sandbox not in self._out:
            return
        self._out.discard(sandbox)
        if self.reuse and not recycle and not sandbox.tainted and self._spare is None:
            try:
                await sandbox.areset()
            except (SandboxError, RuntimeError):
                pass
            else:
                self._spare = sandbox
                return
        await self._destroy(sandbox)

    async def aclose(self) -> None:
        """Destroy the spare and every sandbox handed out. Safe to call twice; a later
        :meth:`acquire` starts a new sandbox."""
        sandboxes = [*self._out, *([self._spare] if self._spare is not None else [])]
        self._out.clear()
        self._spare = None
        await asyncio.shield(
            asyncio.gather(*(self._destroy(sb) for sb in sandboxes), return_exceptions=True))

    async def _destroy(self, sandbox: Sandbox) -> None:
        """Close ``sandbox`` and give its memory back to the budget."""
        try:
            await sandbox.aclose()
        finally:
            if self._memory is not None:
                self._memory.release()

    async def __aenter__(self) -> OnDemandSandboxes:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


@dataclass(frozen=True)
class SandboxConfig:
    """The ``sandbox:`` config section: which backend starts sandboxes, where, and how many
    stay warm.

    Example:
        >>> SandboxConfig(backend="local", pool_size=0).backend
        'local'
    """

    backend: str = "docker"
    """Who starts the sandboxes: ``docker``, ``local`` (bubblewrap, no images: for envs whose
    tools need only the host's python3) or a backend a plugin registered."""
    pool_size: int | None = None
    """Sandboxes kept started and idle (a warm pool). null: as many as episodes run at once,
    at most 16; 0: no pool, each episode's sandbox starts when it is asked for."""
    max_size: int | None = None
    """Most sandboxes alive at once (a pool waits beyond it). null: the episodes in flight."""
    host: str | None = None
    """Where the backend starts them, for a backend with hosts (Docker: a daemon URL such as
    ``tcp://sandboxes:2375`` or ``ssh://user@box``). null: the backend's default
    (``DOCKER_HOST`` or the local socket)."""

    def __post_init__(self) -> None:
        check_backend_name(self.backend)
        if self.pool_size is not None and self.pool_size < 0:
            raise ConfigError(f"sandbox.pool_size must be >= 0 or null, got {self.pool_size}")
        if self.max_size is not None and self.max_size < max(1, self.pool_size or 0):
            raise ConfigError(f"sandbox.max_size must be >= 1 and >= pool_size, got "
                              f"{self.max_size}")


def build_provider(spec: SandboxSpec, config: SandboxConfig | None = None, *,
                   concurrency: int = 1, episodes: int | None = None) -> SandboxProvider:
    """The provider ``config`` asks for, for ``concurrency`` episodes at once (not started).

    Args:
        spec: what each sandbox must be.
        config: the ``sandbox:`` section (default: a Docker pool).
        concurrency: episodes in flight; sizes the pool when ``config`` does not.
        episodes: how many episodes will run, when known: no more are kept warm.

    Raises:
        ConfigError: an unknown backend, or one that takes no ``host``.
    """
    from toolgym.sandbox.pool import PoolConfig, SandboxPool

    config = config or SandboxConfig()
    backend = get_backend(config.backend, **({"host": config.host} if config.host else {}))
    size = config.pool_size
    if size is None:
        size = min(concurrency, 16, episodes if episodes is not None else concurrency)
    if size == 0 and config.max_size is None:
        return OnDemandSandboxes(spec, backend)
    max_size = config.max_size if config.max_size is not None else max(concurrency, size, 1)
    return SandboxPool(spec, PoolConfig(size=size, max_size=max_size), backend=backend)
