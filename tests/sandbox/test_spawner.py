"""The spawner: the agent's commands start from a process of the agent's own uid.

It is on the hot path (see the README's Performance section) and of the agent's
uid, so each test is either "a command started by it is the same as one forked
by the supervisor" or an attack the agent can make on it with its own commands:
the attack must not reach it, or cost the agent nothing but speed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import textwrap

import pytest

from tests.helpers.reach import REACH_PRELUDE
from toolgym.sandbox import supervisor
from toolgym.sandbox.docker import DockerSandbox
from toolgym.sandbox.supervisor import SPAWNER_EXIT_WAIT_S

WHO = textwrap.dedent("""
    import os
    print(json.dumps({"ppid": os.getppid(), "uid": os.getresuid(), "gid": os.getresgid(),
                      "groups": os.getgroups(), "sid": os.getsid(0), "pid": os.getpid()}))
""")


def _child(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(list(argv))


def test_a_reported_pid_is_pinned_only_while_it_is_the_agents():
    me = os.getuid()
    live = _child("sleep", "30")
    try:
        pidfd = supervisor._pidfd_of(live.pid, me)  # noqa: SLF001
        assert isinstance(pidfd, int)
        os.close(pidfd)
        with pytest.raises(PermissionError):
            supervisor._pidfd_of(live.pid, me + 1)  # noqa: SLF001
    finally:
        live.kill()
    os.waitid(os.P_PID, live.pid, os.WEXITED | os.WNOWAIT)  # a zombie: ended, not reaped
    pidfd = supervisor._pidfd_of(live.pid, me)  # noqa: SLF001
    assert isinstance(pidfd, int), "ended but not reaped: its pid is still its own"
    os.close(pidfd)
    live.wait()
    assert supervisor._pidfd_of(live.pid, me) is None  # noqa: SLF001


def test_a_pid_reaped_while_its_owner_is_read_is_gone_not_foreign(monkeypatch):
    # The kernel's stat of /proc/<pid> answers uid 0 while the parent reaps the
    # process: such a command has ended at once, it is not someone else's.
    child = _child("true")
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)

    def owner_while_reaped(pid: int) -> int:
        child.wait()  # reaped between the pidfd and the owner read, as by the spawner
        return 0

    monkeypatch.setattr(supervisor, "_owner", owner_while_reaped)
    assert supervisor._pidfd_of(child.pid, os.getuid()) is None  # noqa: SLF001


async def _who(sandbox, **kwargs) -> dict:
    r = await sandbox.aexec(["python3", "-c", "import json\n" + WHO], **kwargs)
    assert r.ok, r.stderr
    return json.loads(r.stdout)


async def _spawner(sandbox) -> int | None:
    """The pid of the supervisor's child of the agent's uid, if there is one."""
    # The spawner starts on a thread (at supervisor start and after a reset): an agent
    # command waits for it to be up, a trusted one does not.
    await sandbox.aexec("true")
    supervisor = sandbox._channel.supervisor_pid  # noqa: SLF001
    r = await sandbox.aexec(
        f"grep -l '^PPid:\\s*{supervisor}$' /proc/[0-9]*/status | "
        "xargs grep -l '^Uid:\\s*1000\\s' | cut -d/ -f3", trusted=True)
    pids = [int(p) for p in r.stdout.split()]
    assert len(pids) <= 1, pids
    return pids[0] if pids else None


async def _signal_spawner_between_commands(sandbox, signal: str) -> None:
    """A detached process of the agent's sends ``signal`` to the spawner while none runs."""
    spawner = await _spawner(sandbox)
    await sandbox.aexec(f"(sleep 0.2; kill -{signal} {spawner}) > /dev/null 2>&1 &")
    await asyncio.sleep(0.6)


@pytest.mark.docker
async def test_agent_commands_start_from_the_spawner_as_the_agent_in_their_own_session(
        sandbox):
    spawner = await _spawner(sandbox)
    assert spawner is not None
    me = await _who(sandbox)
    assert me["ppid"] == spawner
    assert me["uid"] == [1000] * 3 and me["gid"] == [1000] * 3 and me["groups"] == []
    assert me["sid"] == me["pid"]
    platform = await _who(sandbox, trusted=True)
    assert platform["ppid"] == sandbox._channel.supervisor_pid  # noqa: SLF001
    assert platform["uid"] == [0] * 3
    results = await asyncio.gather(*(sandbox.aexec(f"echo {i}; exit {i % 7}") for i in range(24)))
    assert [(r.stdout, r.exit_code) for r in results] == [(f"{i}\n", i % 7) for i in range(24)]
    r = await sandbox.aexec("cat; echo err >&2", stdin="in\n", env={"A": "b"}, workdir="/tmp")
    assert (r.stdout, r.stderr, r.exit_code) == ("in\n", "err\n", 0)
    r = await sandbox.aexec("echo $A; pwd", env={"A": "b"}, workdir="/tmp")
    assert r.stdout == "b\n/tmp\n"
    r = await sandbox.aexec("no-such-command-xyz")
    assert r.exit_code == 127
    r = await sandbox.aexec(["/no/such/binary"])
    assert r.exit_code == 127 and "No such file" in r.stderr


REACH_SPAWNER = REACH_PRELUDE + """
attempt("ptrace_attach", lambda: ptrace(16))
attempt("ptrace_seize", lambda: ptrace(0x4206))
attempt("mem", lambda: open(f"/proc/{pid}/mem", "rb").read(1))
attempt("environ", lambda: open(f"/proc/{pid}/environ", "rb").read())
attempt("fds", lambda: os.listdir(f"/proc/{pid}/fd"))
for fd in range(3, 8):
    attempt(f"fd{fd}", lambda: open(f"/proc/{pid}/fd/{fd}", "rb"))
attempt("cwd", lambda: os.readlink(f"/proc/{pid}/cwd"))
print(json.dumps(out))
"""


@pytest.mark.docker
async def test_the_agent_cannot_trace_or_take_the_spawners_socket(sandbox):
    spawner = await _spawner(sandbox)
    r = await sandbox.aexec(["python3", "-c", REACH_SPAWNER, str(spawner)])
    outcomes = json.loads(r.stdout)
    assert outcomes == {name: "PermissionError" for name in outcomes}, outcomes
    assert len(outcomes) == 11
    r = await sandbox.aexec(f"ls -l /proc/{spawner}/fd 2>&1; ls -l /proc/self/fd")
    assert "socket:" not in r.stdout, "no command inherits the spawner's socket"


@pytest.mark.docker
async def test_a_killed_spawner_costs_the_agent_only_speed_and_a_reset_restores_it(sandbox):
    spawner = await _spawner(sandbox)
    r = await sandbox.aexec(f"kill -9 {spawner}; echo after")
    assert r.stdout == "after\n"
    for _ in range(3):
        me = await _who(sandbox)
        assert me["ppid"] == sandbox._channel.supervisor_pid  # noqa: SLF001 - forked again
        assert me["uid"] == [1000] * 3 and me["groups"] == [] and me["sid"] == me["pid"]
    assert await _spawner(sandbox) is None
    await sandbox.areset()
    again = await _spawner(sandbox)
    assert again is not None and again != spawner
    assert (await _who(sandbox))["ppid"] == again
    assert sandbox.events["channel_restarts"] == 0 and not sandbox.tainted


@pytest.mark.docker
async def test_a_stopped_spawner_is_dropped_and_no_command_runs_twice(sandbox):
    spawner = await _spawner(sandbox)
    r = await sandbox.aexec(f"kill -STOP {spawner}; echo once >> /tmp/count; cat /tmp/count")
    assert r.stdout == "once\n", "run once (a silent spawner's command is not rerun)"
    assert r.exit_code == 255 and "exit status unknown" in r.stderr
    assert await _spawner(sandbox) is None, "the stopped spawner was killed"
    for _ in range(3):
        r = await sandbox.aexec("echo quick; cat /tmp/count")
        assert r.stdout == "quick\nonce\n" and r.exit_code == 0 and r.duration_s < 1.0
    await sandbox.areset()
    assert await _spawner(sandbox) not in (None, spawner)


@pytest.mark.docker
async def test_a_command_whose_spawner_stops_still_ends_at_its_deadline(sandbox):
    spawner = await _spawner(sandbox)
    r = await sandbox.aexec(f"kill -STOP {spawner}; sleep 30", timeout=1.0)
    assert r.timed_out and r.exit_code == 255
    assert r.duration_s < 1.0 + 3.0, "the spawner's silence is bounded by the deadline"
    ps = await sandbox.aexec("cat /proc/[0-9]*/cmdline | tr '\\0' ' '")
    assert "sleep 30" not in ps.stdout, "the command it started but never reported is killed"
    assert (await sandbox.aexec("echo alive")).stdout == "alive\n"


@pytest.mark.docker
async def test_a_background_stop_of_the_spawner_while_a_command_runs(sandbox):
    spawner = await _spawner(sandbox)
    r = await sandbox.aexec(f"(sleep 0.3; kill -STOP {spawner}) & sleep 1; echo done",
                            timeout=3.0)
    assert r.stdout == "done\n" and not r.timed_out and r.exit_code == 255
    assert r.duration_s < 1.0 + SPAWNER_EXIT_WAIT_S + 0.5, "its end is seen without the spawner"
    assert (await sandbox.aexec("echo alive")).stdout == "alive\n"
    assert not sandbox.tainted


@pytest.mark.docker
async def test_commands_that_end_at_once_keep_the_spawner(spec):
    # Each reported pid is checked while the spawner may already be reaping it:
    # a check that mistook that moment for another uid's process dropped the
    # spawner and told an honest command its status was unknown (~1 in 900).
    # The default pids cap: 32 commands at once hold 32 supervisor threads and 32
    # processes, which the small spec's 64 refuses now and then (EAGAIN, exit 127).
    roomy = dataclasses.replace(spec, limits=dataclasses.replace(spec.limits, pids=256))
    async with await DockerSandbox.acreate(roomy) as sandbox:
        spawner = await _spawner(sandbox)
        for _ in range(150):
            results = await asyncio.gather(*(sandbox.aexec("true") for _ in range(32)))
            assert all(r.exit_code == 0 and r.stderr == "" for r in results), [
                (r.exit_code, r.stderr) for r in results if r.exit_code != 0]
        assert await _spawner(sandbox) == spawner


@pytest.mark.docker
async def test_a_spawner_killed_between_commands_costs_no_command(sandbox):
    await _signal_spawner_between_commands(sandbox, "KILL")
    r = await sandbox.aexec("echo hi")
    assert (r.stdout, r.stderr, r.exit_code) == ("hi\n", "", 0), "it never saw this one"
    assert (await _who(sandbox))["ppid"] == sandbox._channel.supervisor_pid  # noqa: SLF001


@pytest.mark.docker
@pytest.mark.parametrize("chunks", [2, 5])  # ~100 KB through the spawner; ~250 KB forked here
async def test_long_commands_run_whichever_way_they_start(sandbox, chunks):
    spawner = await _spawner(sandbox)
    parent = spawner if chunks == 2 else sandbox._channel.supervisor_pid  # noqa: SLF001
    argv = ["python3", "-c", "import os, sys; print(sum(map(len, sys.argv[1:])), os.getuid(),"
            " os.getppid())"]
    r = await sandbox.aexec(argv + ["x" * 50_000] * chunks)
    assert (r.stdout, r.exit_code) == (f"{50_000 * chunks} 1000 {parent}\n", 0), r.stderr
    assert await _spawner(sandbox) == spawner


@pytest.mark.docker
async def test_a_command_sent_to_a_stopped_spawner_is_not_started_a_second_time_here(sandbox):
    # Whether a silent spawner started it cannot be known, so the supervisor never
    # forks it again: the agent is told its status is unknown, and the next one runs.
    await _signal_spawner_between_commands(sandbox, "STOP")
    r = await sandbox.aexec("echo ran >> /tmp/runs", timeout=1.0)
    assert r.exit_code == 255 and "exit status unknown" in r.stderr
    r = await sandbox.aexec("cat /tmp/runs 2>/dev/null; echo next")
    assert r.stdout.count("ran") <= 1 and r.stdout.endswith("next\n") and r.exit_code == 0
