"""A third-party-style sandbox backend: the whole of what a new backend needs.

It starts real bubblewrap sandboxes (so what runs in them is real) and counts
what it is asked for, so tests can see that pools, on-demand providers and
envs reach a backend only through the registry. Registered with one line,
``register_backend("counting", "tests.helpers.counting_backend:CountingBackend")``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from toolgym.sandbox.budget import MemoryBudget
from toolgym.sandbox.local import LocalSandbox
from toolgym.sandbox.spec import SandboxSpec

CALLS: Counter[str] = Counter()
"""What every CountingBackend was asked, across instances (the registry makes new ones)."""


class CountingBackend:
    """Bubblewrap sandboxes with an own budget of ``budget_mb``; counts creates and reaps."""

    name = "counting"

    def __init__(self, budget_mb: int = 4096) -> None:
        self.budget = MemoryBudget(budget_mb)

    async def acreate(self, spec: SandboxSpec, *,
                      labels: Mapping[str, str] | None = None) -> LocalSandbox:
        CALLS["create"] += 1
        return await LocalSandbox.acreate(spec.limits, network=spec.network, env=spec.env)

    def reap_orphans(self) -> int:
        CALLS["reap"] += 1
        return 0

    def memory_budget(self) -> MemoryBudget:
        return self.budget

    def host_memory_mb(self) -> int:
        return 1 << 20
