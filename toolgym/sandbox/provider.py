"""Where an episode gets its sandbox: the ``SandboxProvider`` protocol and the plain provider.

An env asks a provider for a clean sandbox when an episode starts
(:meth:`~SandboxProvider.acquire`) and hands it back when it ends
(:meth:`~SandboxProvider.release`, ``recycle=True`` on any doubt). Two
providers ship: :class:`~toolgym.sandbox.pool.SandboxPool` keeps sandboxes
warm for many concurrent episodes; :class:`OnDemandSandboxes` starts one
when asked, for a single env or a short run where a warm pool is not worth
its start-up. Both get their sandboxes from a
:class:`~toolgym.sandbox.backends.SandboxBackend`, so neither the env nor the
provider's caller names Docker.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from toolgym.errors import SandboxError
from toolgym.sandbox.backends import SandboxBackend, get_backend
from toolgym.sandbox.base import Sandbox
from toolgym.sandbox.spec import SandboxSpec


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

    async def astart(self) -> OnDemandSandboxes:
        """Nothing to start: sandboxes start on :meth:`acquire`."""
        return self

    async def acquire(self, timeout: float | None = None) -> Sandbox:
        """The spare sandbox if there is one, else a new one (``timeout`` bounds its start).

        Raises:
            SandboxError: the backend could not start one.
        """
        sandbox, self._spare = self._spare, None
        if sandbox is None:
            start = self.backend.acreate(self.spec)
            sandbox = await (start if timeout is None else asyncio.wait_for(start, timeout))
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
        await sandbox.aclose()

    async def aclose(self) -> None:
        """Destroy the spare and every sandbox handed out. Safe to call twice; a later
        :meth:`acquire` starts a new sandbox."""
        sandboxes = [*self._out, *([self._spare] if self._spare is not None else [])]
        self._out.clear()
        self._spare = None
        await asyncio.shield(
            asyncio.gather(*(sb.aclose() for sb in sandboxes), return_exceptions=True))

    async def __aenter__(self) -> OnDemandSandboxes:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

