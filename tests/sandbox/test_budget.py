"""Memory budgets: providers promise no more memory than the host has, and the kernel
holds the promise (issue 16, item 9)."""

from __future__ import annotations

import asyncio
import os

import pytest

from toolgym.errors import ConfigError, PoolExhausted
from toolgym.sandbox import budget, cgroup
from toolgym.sandbox.budget import (
    MemoryBudget,
    Reservation,
    cgroup_memory_limit_mb,
    host_memory_mb,
)
from toolgym.sandbox.docker import DockerBackend
from toolgym.sandbox.docker_client import daemon_info
from toolgym.sandbox.limits import Limits
from toolgym.sandbox.pool import PoolConfig, SandboxPool
from toolgym.sandbox.provider import OnDemandSandboxes
from toolgym.sandbox.spec import SandboxSpec

pytestmark = pytest.mark.docker


@pytest.fixture
def global_512(monkeypatch):
    """The process-wide budget as if $TOOLGYM_MEMORY_BUDGET_MB were 512."""
    monkeypatch.setitem(budget._budgets, "Docker host", MemoryBudget(512))
    return budget._budgets["Docker host"]


@pytest.fixture
def global_768(monkeypatch):
    """The process-wide budget as if $TOOLGYM_MEMORY_BUDGET_MB were 768: three of ``spec``."""
    monkeypatch.setitem(budget._budgets, "Docker host", MemoryBudget(768))
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


async def test_a_queue_for_a_busy_pool_outlasts_the_timeout_while_sandboxes_come_back(spec):
    """A pool at its budget whose sandbox keeps serving episodes is a queue, not a fault:
    ten episodes through one sandbox wait ~5 s in all, past the 4 s acquire timeout, and
    none fails (the fresh-clone demo's sampled evaluation died of PoolExhausted this way,
    64 episodes in flight on a host budget of 23 sandboxes)."""
    config = PoolConfig(size=1, max_size=4, memory_budget_mb=256, acquire_timeout_s=4.0,
                        reap_orphans=False)
    async with SandboxPool(spec, config) as pool:  # 256 MiB sandboxes: one fits

        async def episode() -> None:
            sandbox = await pool.acquire()
            await asyncio.sleep(0.5)
            await pool.release(sandbox)

        await asyncio.gather(*(episode() for _ in range(10)))
        assert pool.events["created"] == 1
        held = await pool.acquire()
        with pytest.raises(PoolExhausted, match="pool's memory_budget_mb"):
            await pool.acquire(timeout=0.3)  # nothing comes back: the timeout still holds
        await pool.release(held)


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


async def test_on_demand_providers_and_pools_share_one_budget(spec, global_768):
    """Three 256 MiB sandboxes fill a 768 MiB budget, whichever provider holds them: a
    fourth acquire on an on-demand provider (no pool at all) queues until one is released."""
    config = PoolConfig(size=0, max_size=4, reap_orphans=False)
    async with SandboxPool(spec, config) as pool, OnDemandSandboxes(spec, reuse=False) as free:
        held = [await pool.acquire(), await pool.acquire(), await free.acquire()]
        assert global_768.used_mb == 768
        with pytest.raises(PoolExhausted, match="process-wide memory budget"):
            await free.acquire(timeout=0.3)
        fourth = asyncio.ensure_future(free.acquire(timeout=120))
        await asyncio.sleep(0.5)
        assert not fourth.done()  # cannot be: nothing was released yet
        await pool.release(held[0], recycle=True)
        sandbox = await fourth
        assert (await sandbox.aexec("echo ok")).stdout == "ok\n"
        assert global_768.used_mb == 768
        await free.release(sandbox)
        await free.release(held[2])
        await pool.release(held[1])
    assert global_768.used_mb == 0


async def test_an_on_demand_budget_above_the_host_is_a_clear_error(spec, monkeypatch):
    monkeypatch.delitem(budget._budgets, "Docker host", raising=False)
    monkeypatch.setenv(budget.BUDGET_ENV, str(host_memory_mb() + 1024))
    with pytest.raises(ConfigError, match="more than the .* MiB the Docker host has"):
        await OnDemandSandboxes(spec).acquire()


def test_a_sandbox_larger_than_the_whole_budget_is_a_clear_error():
    with pytest.raises(ConfigError, match="does not fit the host budget"):
        budget.Reservation([("host budget", MemoryBudget(512))], 1024)


def _capped_parent_possible() -> str | None:
    return cgroup._why_not(daemon_info(), True)


async def test_the_kernel_holds_the_budget_when_admission_is_bypassed(global_512):
    """Two 384 MiB sandboxes started straight from the backend (no provider reserves them,
    as a bug would) under a 512 MiB budget: each stays under its own cap, but together they
    pass the budget, and the parent cgroup the backend put them in OOM-kills one."""
    if (why := _capped_parent_possible()) is not None:
        pytest.skip(f"no capped parent cgroup on this daemon: {why}")
    spec = SandboxSpec(image=os.environ.get("TOOLGYM_TEST_IMAGE", "toolgym/python:latest"),
                       limits=Limits(memory_mb=384, pids=64, timeout_s=60))
    backend = DockerBackend()
    first, second = await asyncio.gather(backend.acreate(spec), backend.acreate(spec))
    try:
        parent = first.container.attrs["HostConfig"]["CgroupParent"]
        assert parent == second.container.attrs["HostConfig"]["CgroupParent"]
        assert parent.endswith("-512m")
        limit = (cgroup.MEMORY_ROOT / parent.lstrip("/") / "memory.limit_in_bytes").read_text()
        assert int(limit) == 512 << 20
        hold = ("import time; b = bytearray(300 << 20); open('/tmp/held', 'w').close(); "
                "time.sleep(60)")
        holder = asyncio.ensure_future(first.aexec(["python3", "-c", hold]))
        while (await first.aexec("ls /tmp/held")).exit_code != 0:
            assert not holder.done(), (await holder)
            await asyncio.sleep(0.1)
        grab = await second.aexec(["python3", "-c", "b = bytearray(300 << 20); print('got it')"])
        if grab.stdout == "got it\n":  # then the kernel must have killed the holder for it
            assert (await asyncio.wait_for(holder, 30)).exit_code != 0
        folder = cgroup.MEMORY_ROOT / parent.lstrip("/")
        kills = sum(int((c / "memory.oom_control").read_text().rsplit("oom_kill ", 1)[1])
                    for c in folder.iterdir() if c.is_dir())
        assert kills >= 1  # counted in the container whose process died
        assert int((folder / "memory.max_usage_in_bytes").read_text()) <= 512 << 20
        holder.cancel()
    finally:
        await asyncio.gather(first.aclose(), second.aclose())


def test_parents_of_dead_owners_are_reaped_and_live_ones_kept(monkeypatch, tmp_path):
    monkeypatch.setattr(cgroup, "MEMORY_ROOT", tmp_path)
    dead = tmp_path / cgroup.TOP / "999999999-12345-512m"
    mine = tmp_path / cgroup.TOP / f"{cgroup._own_prefix()}512m"
    busy = dead.with_name("999999998-1-512m")
    for folder in (dead, mine, busy / "container"):
        folder.mkdir(parents=True)
    assert cgroup.reap_orphan_parents() == 1  # the dead owner's non-empty parent stays
    assert not dead.exists() and mine.exists() and busy.exists()


def test_the_cgroup_limit_of_a_process_and_its_ancestors(tmp_path):
    """A v1 memory limit on an ancestor counts; "no limit" (2**63 - 4096) does not."""
    proc = tmp_path / "cgroup"
    proc.write_text("9:name=systemd:/\n4:memory:/jobs/job1\n0::/\n")
    memory = tmp_path / "memory"
    (memory / "jobs" / "job1").mkdir(parents=True)
    (memory / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (memory / "jobs" / "job1" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert cgroup_memory_limit_mb(proc, tmp_path) is None
    (memory / "jobs" / "memory.limit_in_bytes").write_text(f"{3 << 30}\n")
    assert cgroup_memory_limit_mb(proc, tmp_path) == 3 << 10
    v2 = tmp_path / "v2"
    (v2 / "a" / "b").mkdir(parents=True)
    (v2 / "a" / "memory.max").write_text("max\n")
    (v2 / "a" / "b" / "memory.max").write_text(f"{1 << 30}\n")
    proc.write_text("0::/a/b\n")
    assert cgroup_memory_limit_mb(proc, v2) == 1 << 10


async def test_a_reservation_waits_past_its_timeout_while_memory_keeps_coming_back():
    """On-demand providers wait in ``Reservation.reserve``: like the pool, a queue that moves
    (another holder releasing and taking back every 0.2 s for 3 s) is no timeout (2 s)."""
    held = MemoryBudget(256)
    holder, waiter = Reservation([("budget", held)], 256), Reservation([("budget", held)], 256)
    assert holder.try_reserve() is None

    async def cycle() -> None:
        for _ in range(15):
            await asyncio.sleep(0.2)
            holder.release()
            assert holder.try_reserve() is None  # taken back before the waiter looks
        holder.release()

    cycling = asyncio.ensure_future(cycle())
    await waiter.reserve(timeout=2.0)
    assert cycling.done() and held.used_mb == 256
    with pytest.raises(PoolExhausted, match="budget"):
        await holder.reserve(timeout=0.3)  # nothing comes back: the timeout still holds


async def test_a_reservation_whose_second_budget_is_spent_times_out():
    """Taking back the first budget's promise when the second is spent is no release: a
    waiter counting it as one would never time out (a pool's acquire hung this way)."""
    first, second = MemoryBudget(512), MemoryBudget(256)
    assert Reservation([("second", second)], 256).try_reserve() is None
    waiter = Reservation([("first", first), ("second", second)], 256)
    with pytest.raises(PoolExhausted, match="second"):
        await asyncio.wait_for(waiter.reserve(timeout=0.3), 10)
    assert first.used_mb == 0 and first.releases == 0


async def test_a_pool_waiting_on_the_process_budget_counts_other_providers_releases(spec,
                                                                                    monkeypatch):
    """A pool blocked only by the process-wide budget waits on while other providers
    (here a reservation as an on-demand provider holds one) release and retake memory
    every 0.2 s for 3 s, past its 2 s timeout: the budget's queue moves, so it is no fault."""
    shared = MemoryBudget(256)
    monkeypatch.setitem(budget._budgets, "Docker host", shared)
    holder = Reservation([("process-wide memory budget", shared)], 256)
    assert holder.try_reserve() is None

    async def cycle() -> None:
        for _ in range(15):
            await asyncio.sleep(0.2)
            holder.release()
            assert holder.try_reserve() is None  # taken back before the pool looks
        holder.release()

    config = PoolConfig(size=0, max_size=2, acquire_timeout_s=2.0, reap_orphans=False)
    async with SandboxPool(spec, config) as pool:
        cycling = asyncio.ensure_future(cycle())
        sandbox = await pool.acquire()
        assert cycling.done()
        assert (await sandbox.aexec("echo ok")).stdout == "ok\n"
        with pytest.raises(PoolExhausted, match="process-wide memory budget"):
            await pool.acquire(timeout=0.3)  # nothing comes back: the timeout still holds
        await pool.release(sandbox)
