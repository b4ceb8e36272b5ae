"""LocalSandbox: bubblewrap isolation, rlimits, and the explicit opt-out."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from toolgym.errors import SandboxUnavailable
from toolgym.sandbox.limits import Limits
from toolgym.sandbox.local import LocalSandbox

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None and not os.environ.get("CI"),
                                 reason="bubblewrap not installed (CI installs it)")


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.02)
    return False


@needs_bwrap
async def test_bwrap_isolates_user_files_and_network():
    async with await LocalSandbox.acreate(Limits(memory_mb=256)) as sb:
        r = await sb.aexec("id -u; pwd; ls /root /var/run/docker.sock 2>&1 | wc -l; touch /usr/x")
        uid, cwd, _missing, *_ = r.stdout.split()
        assert (uid, cwd) == ("1000", "/work") and r.exit_code != 0
        net = await sb.aexec([
            "python3", "-c",
            "import socket; socket.create_connection(('1.1.1.1', 53), timeout=2)",
        ])
        assert "Network is unreachable" in net.stderr


@needs_bwrap
async def test_bwrap_memory_rlimit_and_timeout():
    async with await LocalSandbox.acreate(Limits(memory_mb=256)) as sb:
        r = await sb.aexec(["python3", "-c", "x = bytearray(1 << 30); print('survived')"])
        assert "MemoryError" in r.stderr and "survived" not in r.stdout
        t = await sb.aexec("sleep 100", timeout=0.5)
        assert t.timed_out and (await sb.aexec("echo ok")).stdout == "ok\n"


@needs_bwrap
async def test_bwrap_reset_kills_leftovers_and_wipes_files():
    async with await LocalSandbox.acreate() as sb:
        await sb.aexec("echo x > f; setsid sleep 100 >/dev/null 2>&1 &")
        assert await sb.areset() >= 1
        assert (await sb.aexec("ls -A /work; pgrep sleep || true")).stdout == ""


async def test_refuses_without_isolation_unless_opted_in(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailable, match="allow_unisolated=True"):
        await LocalSandbox.acreate()
    async with await LocalSandbox.acreate(allow_unisolated=True) as sb:
        assert not sb.isolated
        r = await sb.aexec("echo hi > f; cat f; sleep 100 & echo $!")
        pid = int(r.stdout.split()[1])
        await sb.areset()  # kills only what the sandbox started, never other host processes
        assert _gone_within(pid, 2.0)
        assert (await sb.aexec("ls")).stdout == ""
    assert os.getpid() > 0  # this process survived the reset
