"""Memory budgets: pools promise no more memory than the host has (issue 16, item 9)."""

from __future__ import annotations

import pytest

from toolgym.errors import ConfigError, PoolExhausted
from toolgym.sandbox import budget
from toolgym.sandbox.budget import MemoryBudget, host_memory_mb
from toolgym.sandbox.pool import PoolConfig, SandboxPool

pytestmark = pytest.mark.docker


@pytest.fixture
def global_512(monkeypatch):
    """The process-wide budget as if $TOOLGYM_MEMORY_BUDGET_MB were 512."""
    monkeypatch.setitem(budget._budgets, "Docker host", MemoryBudget(512))
    return budget._budgets["Docker host"]


async def test_pool_queues_past_its_own_budget_then_goes_on(spec):
    config = PoolConfig(size=1, max_size=4, memory_budget_mb=512, reap_orphans=False)
    async with SandboxPool(spec, config) as pool:  # 256 MiB sandboxes: two fit
        first, second = await pool.acquire(), await pool.acquire()
        with pytest.raises(PoolExhausted, match="pool's memory_budget_mb"):
            await pool.acquire(timeout=0.3)
        await pool.release(first, recycle=True)
        third = await pool.acquire(timeout=60)
        assert (await third.aexec("echo ok")).stdout == "ok\n"
        assert pool.total <= 2
        await pool.release(second)
        await pool.release(third)


async def test_pools_of_a_process_share_the_global_budget(spec, global_512):
    config = PoolConfig(size=1, max_size=4, reap_orphans=False)
    async with SandboxPool(spec, config) as a, SandboxPool(spec, config) as b:
        assert global_512.used_mb == 512
        held = await a.acquire()
        with pytest.raises(PoolExhausted, match="process-wide memory budget"):
            await a.acquire(timeout=0.3)
        await b.aclose()  # the other pool's idle sandbox gives its memory back
        assert (await (await a.acquire(timeout=60)).aexec("echo ok")).stdout == "ok\n"
        await a.release(held)
    assert global_512.used_mb == 0


async def test_a_budget_above_the_host_or_below_the_pool_is_a_clear_error(spec, monkeypatch):
    too_much = host_memory_mb() + 1024
    with pytest.raises(ConfigError, match="more than the .* MiB the Docker host has"):
        await SandboxPool(spec, PoolConfig(size=0, memory_budget_mb=too_much)).astart()
    with pytest.raises(ConfigError, match="cannot hold size=4"):
        await SandboxPool(spec, PoolConfig(size=4, memory_budget_mb=512)).astart()
    monkeypatch.delitem(budget._budgets, "Docker host", raising=False)
    monkeypatch.setenv(budget.BUDGET_ENV, str(too_much))
    with pytest.raises(ConfigError, match="TOOLGYM_MEMORY_BUDGET_MB is"):
        budget.global_budget()
