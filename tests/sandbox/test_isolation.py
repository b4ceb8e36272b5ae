"""The supervisor out of the agent's reach, and episodes that cannot poison the next one.

Each test is an attack the agent can make with its own commands (issue 16): it
must fail against the real Docker engine, and the sandbox must keep answering.
"""

from __future__ import annotations

import json
import textwrap
import tracemalloc

import pytest

from tests.helpers.reach import REACH_PRELUDE
from toolgym.sandbox.base import PLATFORM_DIR
from toolgym.sandbox.pool import PoolConfig, SandboxPool

pytestmark = pytest.mark.docker


def _py(source: str) -> list[str]:
    return ["python3", "-c", textwrap.dedent(source)]


def _supervisor_pid(sandbox) -> int:
    return sandbox._channel.supervisor_pid  # noqa: SLF001


REACH_SUPERVISOR = REACH_PRELUDE + """
attempt("stop", lambda: os.kill(pid, signal.SIGSTOP))
attempt("kill", lambda: os.kill(pid, signal.SIGKILL))
attempt("ptrace_attach", lambda: ptrace(16))
attempt("ptrace_seize", lambda: ptrace(0x4206))
attempt("mem", lambda: open(f"/proc/{pid}/mem", "rb").read(1))
attempt("environ", lambda: open(f"/proc/{pid}/environ", "rb").read())
attempt("fds", lambda: os.listdir(f"/proc/{pid}/fd"))
attempt("stdin", lambda: open(f"/proc/{pid}/fd/0", "rb"))
attempt("stdout", lambda: open(f"/proc/{pid}/fd/1", "wb"))
attempt("cwd", lambda: os.readlink(f"/proc/{pid}/cwd"))
print(json.dumps(out))
"""


async def test_agent_cannot_signal_trace_or_open_the_supervisor(sandbox):
    pid = _supervisor_pid(sandbox)
    r = await sandbox.aexec(["python3", "-c", REACH_SUPERVISOR, str(pid)])
    outcomes = json.loads(r.stdout)
    assert outcomes == {name: "PermissionError" for name in outcomes}, outcomes
    assert len(outcomes) == 10
    r = await sandbox.aexec("kill -9 -1; pkill -9 python3; echo after")
    assert r.stdout == "after\n"
    assert (await sandbox._request("ping"))["pid"] == pid  # noqa: SLF001
    assert sandbox.events["channel_restarts"] == 0


async def test_supervisor_is_the_platform_uid_in_a_read_only_cwd_and_isolated(sandbox):
    pid = _supervisor_pid(sandbox)
    r = await sandbox.aexec(
        f"readlink /proc/{pid}/cwd; grep -E '^(Uid|CapEff)' /proc/{pid}/status; "
        f"tr '\\0' ' ' < /proc/{pid}/cmdline | head -c 30", trusted=True)
    cwd, uid, capeff, cmdline = r.stdout.splitlines()
    assert cwd == "/"
    assert uid.split()[1:] == ["0", "0", "0", "0"]
    assert int(capeff.split()[1], 16) == (1 << 5) | (1 << 6) | (1 << 7)  # KILL, SETGID, SETUID
    assert cmdline.split()[:4] == ["python3", "-I", "-S", "-u"]


async def test_trusted_command_is_out_of_reach_and_can_run_code_as_the_agent(sandbox):
    harness = _py("""
        import os, subprocess
        child = subprocess.run(["id", "-u"], user=1000, group=1000, extra_groups=[],
                               capture_output=True, text=True)
        print(os.getuid(), child.stdout.strip())
    """)
    r = await sandbox.aexec(harness, trusted=True)
    assert r.stdout == "0 1000\n"
    await sandbox.awrite_file(f"{PLATFORM_DIR}/hidden.txt", "assert f(1) == 2", trusted=True)
    assert await sandbox.aread_file(f"{PLATFORM_DIR}/hidden.txt", trusted=True) == (
        b"assert f(1) == 2")
    r = await sandbox.aexec(f"ls {PLATFORM_DIR}; cat {PLATFORM_DIR}/hidden.txt")
    assert r.exit_code != 0 and "assert" not in r.stdout
    with pytest.raises(FileNotFoundError):
        await sandbox.aread_file(f"{PLATFORM_DIR}/hidden.txt")
    await sandbox.awrite_file("mine.txt", "x")
    r = await sandbox.aexec("stat -c %u mine.txt && rm mine.txt && echo removed")
    assert r.stdout == "1000\nremoved\n"


SHADOWING_MODULES = ("json", "base64", "selectors", "subprocess", "threading", "struct",
                     "hashlib", "signal", "shutil", "sitecustomize", "usercustomize", "os")


async def test_module_planted_in_work_does_not_run_in_a_restarted_supervisor(sandbox):
    plant = "import pathlib; pathlib.Path('/tmp/pwned').write_text('ran')\n"
    for name in SHADOWING_MODULES:
        await sandbox.awrite_file(f"{name}.py", plant)
    await sandbox.aexec("mkdir -p /tmp/py && cp /work/*.py /tmp/py/")
    sandbox._channel.close()  # noqa: SLF001 - the supervisor is restarted on the next call
    r = await sandbox.aexec("echo fine; ls /tmp/pwned", env={"PYTHONPATH": "/tmp/py"})
    assert r.stdout == "fine\n" and "No such file" in r.stderr
    assert sandbox.events["channel_restarts"] == 1
    assert (await sandbox.aexec("python3 -c 1; ls /tmp/pwned")).exit_code != 0


FORGE = """
import base64, json, struct, sys
fd = open(f"/proc/{sys.argv[1]}/fd/1", "wb", buffering=0)
blank = base64.b64encode(b"forged").decode()
for rid in range(1, 2000):
    body = json.dumps({"id": rid, "exit_code": 0, "stdout": blank, "stderr": "",
                       "timed_out": False, "truncated": False, "duration_s": 0}).encode()
    fd.write(struct.pack(">I", len(body)) + body)
"""


async def test_frames_written_to_the_supervisors_stdout_are_not_replies(sandbox):
    pid = _supervisor_pid(sandbox)
    # Even the platform's own uid, which may open the supervisor's descriptors, cannot
    # guess a request id: its frames answer nothing.
    r = await sandbox.aexec(["python3", "-c", FORGE, str(pid)], trusted=True)
    assert r.ok, r.stderr
    for _ in range(3):
        assert (await sandbox.aexec("echo real")).stdout == "real\n"
    assert not sandbox.tainted


async def test_a_later_episode_cannot_read_an_earlier_ones_hidden_tests(sandbox):
    secret = "assert solve(41) == 'hidden-7f3a9c'"
    await sandbox.awrite_file(f"{PLATFORM_DIR}/tests.py", secret, trusted=True)
    r = await sandbox.aexec(
        _py(f"import sys; t = sys.stdin.read(); print(len(open('{PLATFORM_DIR}/tests.py')"
            ".read() + t))"), stdin=secret, trusted=True)
    assert r.ok
    await sandbox.areset()
    scan = _py("""
        import os, re
        needle = b"hidden-" + b"7f3a9c"  # not in this script's own cmdline
        hits, readable = [], 0
        for pid in filter(str.isdigit, os.listdir("/proc")):
            for part in ("cmdline", "environ"):
                try:
                    if needle in open(f"/proc/{pid}/{part}", "rb").read():
                        hits.append((pid, part))
                except OSError:
                    pass
            if int(pid) == os.getpid():
                continue
            try:
                maps = open(f"/proc/{pid}/maps").read()
                mem = open(f"/proc/{pid}/mem", "rb")
            except OSError:
                continue
            readable += 1
            for m in re.finditer(r"^([0-9a-f]+)-([0-9a-f]+) r", maps, re.M):
                try:
                    mem.seek(int(m[1], 16))
                    if needle in mem.read(int(m[2], 16) - int(m[1], 16)):
                        hits.append((pid, "mem"))
                except OSError:
                    pass
        print(hits, readable)
    """)
    r = await sandbox.aexec(scan)
    assert r.stdout == "[] 0\n", r.stdout + r.stderr
    r = await sandbox.aexec(f"grep -rs hidden-7f3a''9c /work /tmp /dev/shm {PLATFORM_DIR}; "
                            f"ls -A {PLATFORM_DIR}")
    assert "hidden" not in r.stdout


LEAVE_IPC = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
size = 150 << 20
shm = libc.shmget(0x5eed, size, 0o1600)  # IPC_CREAT | 0600
addr = libc.shmat(shm, None, 0)
ctypes.memset(addr, 1, size)  # charged to the sandbox's memory
msg = libc.msgget(0x5eee, 0o1600)
buf = ctypes.create_string_buffer(b"\\x01\\0\\0\\0\\0\\0\\0\\0secret", 14)
libc.msgsnd(msg, buf, 6, 0)
libc.semget(0x5eef, 1, 0o1600)
q = libc.mq_open(b"/leak", os.O_CREAT | os.O_RDWR, 0o600, None)
libc.mq_send(q, b"secret", 6, 0)
print(shm >= 0, msg >= 0, q >= 0)
"""


async def test_reset_clears_sysv_ipc_and_posix_mqueues(sandbox):
    r = await sandbox.aexec(_py(LEAVE_IPC))
    assert r.stdout == "True True True\n", r.stderr
    await sandbox.areset()
    r = await sandbox.aexec("tail -n +2 -q /proc/sysvipc/shm /proc/sysvipc/msg "
                            "/proc/sysvipc/sem; ls -A /dev/mqueue")
    assert r.stdout == ""
    # The 150 MiB segment no longer counts against this episode's 256 MiB.
    r = await sandbox.aexec(_py("x = bytearray(180 << 20); x[::4096] = b'1' * len(x[::4096]); "
                                "print('ok')"))
    assert r.stdout == "ok\n", (r.exit_code, r.stderr)


FLOOD = """
import struct, sys
fd = open(f"/proc/{sys.argv[1]}/fd/1", "wb", buffering=0)
fd.write(struct.pack(">I", 3 << 30))  # a reply frame that claims 3 GiB
chunk = b"x" * (1 << 20)
for _ in range(64):
    fd.write(chunk)
"""


async def test_an_oversized_reply_frame_is_refused_counted_and_recycled(spec):
    """What a supervisor taken over would send: the host must not buffer it."""
    async with SandboxPool(spec, PoolConfig(size=1, max_size=1)) as pool:
        async with pool.sandbox() as sb:
            first = sb.id
            tracemalloc.start()
            try:
                r = await sb.aexec(["python3", "-c", FLOOD, str(_supervisor_pid(sb))],
                                   trusted=True)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert r.exit_code == -9 and "restarted" in r.stderr
            assert peak < 16 << 20, f"the host buffered {peak >> 20} MiB of a refused frame"
            assert sb.tainted and sb.events["bad_frames"] == 1
            assert (await sb.aexec("echo still")).stdout == "still\n"
        async with pool.sandbox() as sb:
            assert sb.id != first, "a sandbox that broke the protocol is not reused"
        assert pool.events["recycled"] == 1
