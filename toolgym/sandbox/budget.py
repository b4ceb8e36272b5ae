"""Memory the sandboxes may be promised: a per-process budget the pools draw from.

Each sandbox's memory cap is a promise the host must keep: 64 sandboxes of
1 GiB on a 23 GiB host can, together, take the host down. Every
:class:`~toolgym.sandbox.pool.SandboxPool` of a process reserves its sandboxes'
caps from :func:`global_budget` (and from its own ``memory_budget_mb``, when
set) before it starts one, and gives them back when the sandbox is gone; past
the budget a pool queues, and refuses with :class:`~toolgym.errors.PoolExhausted`
when the wait runs out.

There is one such budget per host that sandboxes run on (the Docker host,
this machine for bubblewrap): ``$TOOLGYM_MEMORY_BUDGET_MB`` or, by default,
that host's memory. A budget above the host's memory is a configuration
error: it would promise what is not there.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable

from toolgym.errors import ConfigError

BUDGET_ENV = "TOOLGYM_MEMORY_BUDGET_MB"


@functools.cache
def host_memory_mb(host: str | None = None) -> int:
    """Memory of the machine the Docker daemon (at ``host``) runs on, in MiB."""
    from toolgym.sandbox.docker_client import docker_client  # the SDK only where Docker is used

    return int(docker_client(host).info()["MemTotal"]) >> 20


def machine_memory_mb() -> int:
    """Memory of this machine, in MiB (where bubblewrap sandboxes run)."""
    return (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) >> 20


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
        self._lock = threading.Lock()

    def try_reserve(self, mb: int) -> bool:
        """Promise ``mb`` more if it fits; say whether it did."""
        with self._lock:
            if self.used_mb + mb > self.limit_mb:
                return False
            self.used_mb += mb
            return True

    def release(self, mb: int) -> None:
        """Take back a promise made by :meth:`try_reserve`."""
        with self._lock:
            self.used_mb = max(0, self.used_mb - mb)


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
