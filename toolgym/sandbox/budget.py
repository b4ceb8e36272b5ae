"""Memory the sandboxes may be promised: a per-process budget the pools draw from.

Each sandbox's memory cap is a promise the host must keep: 64 sandboxes of
1 GiB on a 23 GiB host can, together, take the host down. Every
:class:`~toolgym.sandbox.pool.SandboxPool` of a process reserves its sandboxes'
caps from :func:`global_budget` (and from its own ``memory_budget_mb``, when
set) before it starts one, and gives them back when the sandbox is gone; past
the budget a pool queues, and refuses with :class:`~toolgym.errors.PoolExhausted`
when the wait runs out.

The global budget is ``$TOOLGYM_MEMORY_BUDGET_MB`` or, by default, the Docker
host's memory. A budget above the host's memory is a configuration error:
it would promise what is not there.
"""

from __future__ import annotations

import functools
import os
import threading

from toolgym.errors import ConfigError
from toolgym.sandbox.docker_client import docker_client

BUDGET_ENV = "TOOLGYM_MEMORY_BUDGET_MB"


@functools.lru_cache(maxsize=1)
def host_memory_mb() -> int:
    """Memory of the machine the Docker daemon runs on, in MiB."""
    return int(docker_client().info()["MemTotal"]) >> 20


def check_against_host(budget_mb: int, what: str) -> None:
    """Raise :class:`ConfigError` when ``budget_mb`` promises more than the host has."""
    host = host_memory_mb()
    if budget_mb > host:
        raise ConfigError(
            f"{what} is {budget_mb} MiB, more than the {host} MiB the Docker host has: "
            f"its sandboxes could together exhaust the host. Lower it to at most {host} "
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


_global: MemoryBudget | None = None
_global_lock = threading.Lock()


def global_budget() -> MemoryBudget:
    """The budget every pool of this process shares (made on first use).

    Raises:
        ConfigError: ``$TOOLGYM_MEMORY_BUDGET_MB`` is not a number or exceeds the host.
    """
    global _global
    with _global_lock:
        if _global is None:
            raw = os.environ.get(BUDGET_ENV)
            if raw is None:
                limit = host_memory_mb()
            else:
                try:
                    limit = int(raw)
                except ValueError:
                    raise ConfigError(f"${BUDGET_ENV}={raw!r} is not a number of MiB") from None
                check_against_host(limit, f"${BUDGET_ENV}")
            _global = MemoryBudget(limit)
        return _global
