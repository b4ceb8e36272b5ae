"""SandboxPool against the real engine: warm, clean between users, bounded, leak-free."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from tests.sandbox.conftest import IMAGE, run_containers
from toolgym.errors import PoolExhausted
from toolgym.sandbox.pool import PoolConfig, SandboxPool

pytestmark = pytest.mark.docker


async def test_pooled_sandbox_keeps_no_state_between_users(spec):
    async with SandboxPool(spec, PoolConfig(size=1, max_size=1)) as pool:
        async with pool.sandbox() as sb:
            first = sb.id
            await sb.aexec(
                "echo secret > /work/note; echo t > /tmp/t; (sleep 1000 &) ; sleep 1000 &"
            )
        async with pool.sandbox() as sb:
            assert sb.id == first, "the warm container is reused"
            r = await sb.aexec("ls -A /work /tmp")
            assert "note" not in r.stdout.split() and "t" not in r.stdout.split()
            ps = await sb.aexec("cat /proc/[0-9]*/cmdline | tr '\\0' ' '")
            assert "sleep 1000" not in ps.stdout, "background processes of the last user are gone"


async def test_acquire_is_bounded_with_a_clear_error(spec):
    async with SandboxPool(spec, PoolConfig(size=1, max_size=1)) as pool:
        held = await pool.acquire()
        with pytest.raises(PoolExhausted, match="max_size=1"):
            await pool.acquire(timeout=0.2)
        waiter = asyncio.ensure_future(pool.acquire(timeout=10))
        await asyncio.sleep(0.1)
        await pool.release(held)
        assert (await waiter).id == held.id


async def test_recycled_after_max_uses_and_on_error(spec):
    async with SandboxPool(spec, PoolConfig(size=1, max_size=2, max_uses=2)) as pool:
        ids = []
        for _ in range(3):
            async with pool.sandbox() as sb:
                ids.append(sb.id)
        assert ids[0] == ids[1] != ids[2]
        with pytest.raises(ZeroDivisionError):
            async with pool.sandbox() as sb:
                bad = sb.id
                raise ZeroDivisionError("an episode fails while holding the sandbox")
        async with pool.sandbox() as sb:
            assert sb.id != bad
        assert pool.events["recycled"] == 2


async def test_dead_idle_sandbox_is_replaced_by_health_check(spec):
    cfg = PoolConfig(size=1, max_size=2, health_check_after_s=0.0)
    async with SandboxPool(spec, cfg) as pool:
        async with pool.sandbox() as sb:
            dead = sb
        await asyncio.to_thread(dead.container.kill)
        async with pool.sandbox() as sb:
            assert sb.id != dead.id and (await sb.aexec("echo ok")).ok
        assert pool.events["health_failed"] == 1


async def test_no_leak_after_exception_and_cancellation(spec):
    from toolgym.sandbox.owner import RUN_ID

    before = set(run_containers(RUN_ID))
    with pytest.raises(RuntimeError):
        async with SandboxPool(spec, PoolConfig(size=2, max_size=4)) as pool:
            async with pool.sandbox():
                raise RuntimeError("boom")
    pool = await SandboxPool(spec, PoolConfig(size=2, max_size=4)).astart()

    async def episode():
        async with pool.sandbox() as sb:
            await sb.aexec("sleep 1000", timeout=100)

    task = asyncio.ensure_future(episode())
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await pool.aclose()
    assert set(run_containers(RUN_ID)) == before


def _owner_script(body: str) -> str:
    # An owner still alive after 45 s prints where it is stuck (to the test's failure).
    return textwrap.dedent(f"""
        import asyncio, faulthandler, os, sys
        faulthandler.dump_traceback_later(45)
        from toolgym.sandbox.docker import SandboxSpec
        from toolgym.sandbox.pool import SandboxPool, PoolConfig
        from toolgym.sandbox.owner import RUN_ID
        from toolgym.sandbox import cleanup
        spec = SandboxSpec(image={IMAGE!r})
    """) + textwrap.dedent(body)


def _spawn(body: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _owner_script(body)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=os.getcwd())


def _ended(proc: subprocess.Popen[str], timeout: float) -> None:
    """Wait for ``proc``; if it hangs, kill it and fail with its stacks (no process leaks
    into the next test's unraisable-exception check)."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the owner did not exit within {timeout} s; its stacks:\n{err}")


def test_sigkill_of_owner_then_new_pool_leaves_zero_leftovers(spec):
    proc = _spawn("""
        async def main():
            pool = await SandboxPool(spec, PoolConfig(size=3)).astart()
            print(RUN_ID, flush=True)
            await asyncio.sleep(1000)
        asyncio.run(main())
    """)
    run_id = proc.stdout.readline().strip()
    assert len(run_containers(run_id)) == 3
    proc.send_signal(signal.SIGKILL)
    _ended(proc, timeout=60)
    assert len(run_containers(run_id)) == 3, "kill -9 leaves them (nothing can run)"
    sockets = list(Path(tempfile.gettempdir()).glob(f"toolgym-sockets-{proc.pid}-*"))
    assert len(sockets) == 1 and len(list(sockets[0].iterdir())) == 3, sockets

    async def start_new_pool():
        async with SandboxPool(spec, PoolConfig(size=1)) as pool:
            return pool.events["orphans_reaped"]

    # Every pool reaps every dead owner's sandboxes, so under pytest-xdist a pool of a
    # test on another worker may take some of these first (this one then counts fewer,
    # or counts that test's): what holds either way is that none is left.
    reaped = asyncio.run(start_new_pool())
    assert run_containers(run_id) == []
    assert not sockets[0].exists(), "its channel sockets go with its containers"
    assert reaped == 3 or os.environ.get("PYTEST_XDIST_WORKER"), reaped


@pytest.mark.parametrize("ending", ["return", "raise", "sigterm", "sigint"])
def test_exit_hook_removes_containers(ending):
    # Ctrl-C as a terminal delivers it: Python's handler in place, even where the tests
    # run as a background job of a shell (which starts its jobs with SIGINT ignored).
    proc = _spawn(f"""
        import signal
        signal.signal(signal.SIGINT, signal.default_int_handler)
        cleanup.exit_on_sigterm()
        from toolgym.sandbox.docker import DockerSandbox
        sb = DockerSandbox.create(spec)
        print(RUN_ID, flush=True)
        if {ending!r} == "raise":
            raise SystemExit("crash")
        if {ending!r} in ("sigterm", "sigint"):
            import time; time.sleep(1000)
    """)
    run_id = proc.stdout.readline().strip()
    if ending == "sigterm":
        proc.send_signal(signal.SIGTERM)
    elif ending == "sigint":
        proc.send_signal(signal.SIGINT)
    _ended(proc, timeout=60)
    assert run_containers(run_id) == []
    assert not list(Path(tempfile.gettempdir()).glob(f"toolgym-sockets-{proc.pid}-*"))


async def test_an_acquire_cancelled_while_its_sandbox_starts_leaks_nothing(spec):
    """A cancel that reached _create after the backend had made the sandbox (here: while
    the pool's lock was taken, as under many waiters) left a container no one owned."""
    from toolgym.sandbox.owner import RUN_ID

    before = set(run_containers(RUN_ID))
    pool = await SandboxPool(spec, PoolConfig(size=0, max_size=4)).astart()
    try:
        held = []  # starts quicker than their delay (an idle machine): kept busy till the end
        for delay in (0.0, 0.05, 0.2, 0.5, 1.0):  # cancelled at points all through the start
            task = asyncio.ensure_future(pool.acquire())
            await asyncio.sleep(delay)
            if task.done():
                held.append(task.result())
                continue
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert len(held) <= 2, "a container starts in well over 0.2 s: the first three cancel"
        assert pool._cond is not None
        task = asyncio.ensure_future(pool.acquire())
        while pool.total == len(held):  # past acquire's own use of the lock: starting one
            await asyncio.sleep(0.01)
        async with pool._cond:  # the lock taken while the sandbox comes up
            created = pool.events["created"]
            for _ in range(600):
                if pool.events["created"] > created:
                    break
                await asyncio.sleep(0.05)
            task.cancel()
        [got] = await asyncio.gather(task, return_exceptions=True)
        if not isinstance(got, BaseException):  # it got its sandbox before the cancel
            await pool.release(got)
        for sandbox in held:
            await pool.release(sandbox)
        async with pool.sandbox() as sb:  # the pool still works, its counts are right
            assert (await sb.aexec("echo ok")).stdout == "ok\n"
        assert pool.in_use == 0
    finally:
        await pool.aclose()
    for _ in range(50):  # removals of cancelled starts run in threads
        if set(run_containers(RUN_ID)) == before:
            break
        await asyncio.sleep(0.2)
    assert set(run_containers(RUN_ID)) == before
