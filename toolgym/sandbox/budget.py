"""Memory the sandboxes may be promised: a per-process budget every provider draws from.

Each sandbox's memory cap is a promise the host must keep: 64 sandboxes of
1 GiB on a 23 GiB host can, together, take the host down. Every provider of a
process (each :class:`~toolgym.sandbox.pool.SandboxPool`, each
:class:`~toolgym.sandbox.provider.OnDemandSandboxes`) reserves its sandboxes'
caps from its backend's process-wide budget (and a pool from its own
``memory_budget_mb``, when set) before it starts one, through a
:class:`Reservation`, and gives them back when the sandbox is gone; past the
budget it queues, and refuses with :class:`~toolgym.errors.PoolExhausted`
when the wait runs out.

There is one such budget per host that sandboxes run on (the Docker host,
this machine for bubblewrap): ``$TOOLGYM_MEMORY_BUDGET_MB`` or, by default,
that host's memory (for bubblewrap: the smaller of the machine's memory and
this process's cgroup limit, which its sandboxes share). A budget above the
host's memory is a configuration error: it would promise what is not there.
This is admission control; on a local Docker daemon the kernel enforces the
same budget too (:mod:`toolgym.sandbox.cgroup`).
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from toolgym.errors import ConfigError, PoolExhausted

BUDGET_ENV = "TOOLGYM_MEMORY_BUDGET_MB"
BUDGET_POLL_S = 0.25
"""How often a provider waiting for a budget looks again (other providers free it)."""
CGROUP_ROOT = Path("/sys/fs/cgroup")


@functools.cache
def host_memory_mb(host: str | None = None) -> int:
    """Memory of the machine the Docker daemon (at ``host``) runs on, in MiB."""
    from toolgym.sandbox.docker_client import daemon_info  # the SDK only where Docker is used

    return int(str(daemon_info(host)["MemTotal"])) >> 20


def machine_memory_mb() -> int:
    """Memory this process and its children (bubblewrap sandboxes) may use, in MiB: the
    machine's, or less where this process's cgroup is capped."""
    physical = (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) >> 20
    capped = cgroup_memory_limit_mb()
    return physical if capped is None else min(physical, capped)


def cgroup_memory_limit_mb(proc_cgroup: Path = Path("/proc/self/cgroup"),
                           root: Path = CGROUP_ROOT) -> int | None:
    """The tightest memory limit on the cgroup ``proc_cgroup`` names and its ancestors
    (cgroup v2, or v1's memory controller), in MiB; None where there is none or it cannot
    be read.

    Example:
        >>> cgroup_memory_limit_mb(Path("/nonexistent")) is None
        True
    """
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits: list[int] = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            base, name = root, "memory.max"
        elif "memory" in controllers.split(","):
            base, name = root / "memory", "memory.limit_in_bytes"
        else:
            continue
        folder = base / path.strip("/")
        for level in [folder, *folder.parents]:
            try:
                raw = (level / name).read_text().strip()
            except OSError:
                raw = ""
            if raw.isdigit() and int(raw) < 1 << 60:  # v1 writes "no limit" as ~2**63
                limits.append(int(raw) >> 20)
            if level == base:
                break
    return min(limits, default=None)


def check_against_host(budget_mb: int, what: str, host_mb: int | None = None,
                       host: str = "Docker host") -> None:
    """Raise :class:`ConfigError` when ``budget_mb`` promises more than ``host`` has
    (``host_mb``, default the Docker host's memory)."""
    host_mb = host_memory_mb() if host_mb is None else host_mb
    if budget_mb > host_mb:
        raise ConfigError(
            f"{what} is {budget_mb} MiB, more than the {host_mb} MiB the {host} has: "
            f"its sandboxes could together exhaust the host. Lower it to at most {host_mb} "
            "(or lower the sandboxes' memory_mb)."
        )


class MemoryBudget:
    """A thread-safe count of MiB promised out of ``limit_mb``.

    Example:
        >>> b = MemoryBudget(1024)
        >>> b.try_reserve(768), b.try_reserve(512), b.used_mb
        (True, False, 768)
        >>> b.release(768); b.used_mb
        0
    """

    def __init__(self, limit_mb: int) -> None:
        if limit_mb < 1:
            raise ConfigError(f"a memory budget must be at least 1 MiB, got {limit_mb}")
        self.limit_mb = limit_mb
        self.used_mb = 0
        self.releases = 0
        """Promises taken back so far (a waiter times out only while this stands still)."""
        self._lock = threading.Lock()

    def try_reserve(self, mb: int) -> bool:
        """Promise ``mb`` more if it fits; say whether it did."""
        with self._lock:
            if self.used_mb + mb > self.limit_mb:
                return False
            self.used_mb += mb
            return True

    def release(self, mb: int, *, undo: bool = False) -> None:
        """Take back a promise made by :meth:`try_reserve`.

        ``undo`` marks one taken back at once because another budget of the same
        :class:`Reservation` was spent: no memory came free for a waiter, so it
        is not counted in :attr:`releases` (else a waiter would wait forever on
        its own attempts).
        """
        with self._lock:
            self.used_mb = max(0, self.used_mb - mb)
            if not undo:
                self.releases += 1


class Reservation:
    """One sandbox's memory reserved in several budgets at once: in all of them, or none.

    Example:
        >>> pool, host = MemoryBudget(512), MemoryBudget(300)
        >>> r = Reservation([("pool budget", pool), ("host budget", host)], 256)
        >>> r.try_reserve(), r.try_reserve(), pool.used_mb
        (None, 'host budget', 256)
    """

    def __init__(self, budgets: Sequence[tuple[str, MemoryBudget]], mb: int) -> None:
        self.budgets = list(budgets)
        self.mb = mb
        for what, budget in self.budgets:
            if mb > budget.limit_mb:
                raise ConfigError(f"A sandbox of memory_mb={mb} does not fit the {what} "
                                  f"({budget.limit_mb} MiB). Lower memory_mb or raise the budget.")

    def try_reserve(self) -> str | None:
        """Reserve ``mb`` in every budget; else reserve nothing and name the one that is spent."""
        taken: list[MemoryBudget] = []
        for what, budget in self.budgets:
            if not budget.try_reserve(self.mb):
                for done in taken:
                    done.release(self.mb, undo=True)
                return what
            taken.append(budget)
        return None

    async def reserve(self, timeout: float) -> None:
        """Wait until :meth:`try_reserve` succeeds (other providers release memory).

        The ``timeout`` runs from the last release in any of the budgets: a queue
        that moves is waited on however long it is (as in ``SandboxPool.acquire``).

        Raises:
            PoolExhausted: no memory came back for ``timeout`` seconds (it names the budget).
        """
        deadline, seen = time.monotonic() + timeout, self.releases()
        while (blocked := self.try_reserve()) is not None:
            if (now := self.releases()) != seen:
                deadline, seen = time.monotonic() + timeout, now
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PoolExhausted(0, timeout, blocked)
            await asyncio.sleep(min(remaining, BUDGET_POLL_S))

    def releases(self) -> int:
        """Releases so far in any of the budgets: a waiter's sign that its queue moves."""
        return sum(budget.releases for _, budget in self.budgets)

    def release(self) -> None:
        """Give back one sandbox's memory to every budget."""
        for _, budget in self.budgets:
            budget.release(self.mb)


_budgets: dict[str, MemoryBudget] = {}
_budgets_lock = threading.Lock()


def host_budget(host: str, host_mb: Callable[[], int]) -> MemoryBudget:
    """The budget every pool of this process on ``host`` shares (made on first use).

    Args:
        host: names the host ("Docker host", "machine"); one budget per name.
        host_mb: the host's memory in MiB, asked once.

    Raises:
        ConfigError: ``$TOOLGYM_MEMORY_BUDGET_MB`` is not a number or exceeds the host.
    """
    with _budgets_lock:
        if host not in _budgets:
            raw = os.environ.get(BUDGET_ENV)
            if raw is None:
                limit = host_mb()
            else:
                try:
                    limit = int(raw)
                except ValueError:
                    raise ConfigError(f"${BUDGET_ENV}={raw!r} is not a number of MiB") from None
                check_against_host(limit, f"${BUDGET_ENV}", host_mb(), host)
            _budgets[host] = MemoryBudget(limit)
        return _budgets[host]


def global_budget() -> MemoryBudget:
    """The Docker host's budget (see :func:`host_budget`)."""
    return host_budget("Docker host", host_memory_mb)
