"""DockerSandbox against the real engine: limits hold, the channel heals, results are right."""

from __future__ import annotations

import asyncio
import time

import pytest

from toolgym.errors import ImageNotFound, SandboxCrashed
from toolgym.sandbox.docker import DockerSandbox, SandboxSpec

pytestmark = pytest.mark.docker


async def test_exec_returns_output_and_exit_code(sandbox):
    r = await sandbox.aexec("echo out; echo err >&2; exit 3")
    assert (r.exit_code, r.stdout, r.stderr) == (3, "out\n", "err\n")
    assert not r.ok and not r.timed_out and not r.truncated


async def test_argv_stdin_env_and_workdir(sandbox):
    r = await sandbox.aexec(
        ["python3", "-c", "import sys,os; print(sys.stdin.read()+os.environ['X'])"],
        stdin="in-", env={"X": "env"},
    )
    assert r.stdout == "in-env\n"
    await sandbox.aexec("mkdir -p sub")
    assert (await sandbox.aexec("pwd", workdir="/work/sub")).stdout == "/work/sub\n"


async def test_timeout_kills_process_group_and_sandbox_stays_usable(sandbox):
    start = time.monotonic()
    r = await sandbox.aexec("sleep 1000 & sleep 1000", timeout=1.0)
    assert r.timed_out and r.exit_code == -9
    assert time.monotonic() - start < 2.0
    assert (await sandbox.aexec("echo alive")).stdout == "alive\n"
    ps = await sandbox.aexec("cat /proc/[0-9]*/cmdline | tr '\\0' ' '")
    assert "sleep 1000" not in ps.stdout, "the timed-out process group must be gone"


async def test_output_is_capped_and_flagged(sandbox):
    r = await sandbox.aexec("head -c 100000000 /dev/zero | tr '\\0' a", output_bytes=10_000)
    assert r.truncated and r.stdout == "a" * 10_000 and r.exit_code == 0


async def test_memory_bomb_is_killed_and_reported(sandbox):
    r = await sandbox.aexec(["python3", "-c", "x = bytearray(1 << 30); print('survived')"])
    assert not r.ok and "survived" not in r.stdout
    assert r.exit_code in (-9, 1)  # OOM-killed, or MemoryError where the kernel refuses first
    assert (await sandbox.aexec("echo alive")).ok


async def test_fork_bomb_is_contained(sandbox):
    r = await sandbox.aexec("bomb() { bomb | bomb & }; bomb", timeout=3.0)
    assert r.timed_out or r.exit_code != 0 or r.ok
    await sandbox.areset()
    assert (await sandbox.aexec("echo alive")).stdout == "alive\n"


async def test_no_network(sandbox):
    r = await sandbox.aexec(["python3", "-c",
        "import socket; socket.create_connection(('1.1.1.1', 53), timeout=2)"])
    assert r.exit_code != 0 and "Network is unreachable" in r.stderr
    assert (await sandbox.aexec("ls /sys/class/net")).stdout.split() == ["lo"]


async def test_root_is_read_only_and_workdir_writable(sandbox):
    assert not (await sandbox.aexec("touch /etc/hacked")).ok
    assert not (await sandbox.aexec("touch /usr/bin/hacked")).ok
    assert (await sandbox.aexec("touch /work/fine && touch /tmp/fine")).ok


async def test_not_root_and_no_capabilities(sandbox):
    r = await sandbox.aexec(
        "id -u; grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status"
    )
    uid, capeff, nnp = r.stdout.splitlines()
    assert uid == "1000"
    assert capeff.split()[1] == "0000000000000000"
    assert nnp.split()[1] == "1"


async def test_host_files_and_docker_socket_invisible(sandbox, tmp_path):
    marker = tmp_path / "host-secret"
    marker.write_text("secret")
    r = await sandbox.aexec(f"ls {marker}; ls /var/run/docker.sock /run/docker.sock; ls /work/main")
    assert r.exit_code != 0 and "secret" not in r.stdout and "docker.sock" not in r.stdout


async def test_files_round_trip_and_missing_file(sandbox):
    await sandbox.awrite_file("dir/a.bin", bytes(range(256)))
    assert await sandbox.aread_file("/work/dir/a.bin") == bytes(range(256))
    with pytest.raises(FileNotFoundError):
        await sandbox.aread_file("nope.txt")
    with pytest.raises(OSError):
        await sandbox.awrite_file("/etc/x", "no")


async def test_killed_supervisor_is_restarted_and_counted(sandbox):
    pid = sandbox._channel.supervisor_pid  # noqa: SLF001
    r = await sandbox.aexec(f"sleep 0.2; kill -9 {pid}", trusted=True)
    assert r.exit_code == -9 and "restarted" in r.stderr
    assert (await sandbox.aexec("echo back")).stdout == "back\n"
    assert sandbox.events["channel_restarts"] == 1


async def test_dead_container_is_an_infrastructure_error(sandbox):
    await asyncio.to_thread(sandbox.container.kill)
    with pytest.raises(SandboxCrashed):
        await sandbox.aexec("echo hi")


async def test_32_sandboxes_exec_concurrently(spec):
    started = await asyncio.gather(*(DockerSandbox.acreate(spec) for _ in range(32)),
                                   return_exceptions=True)
    sandboxes = [sb for sb in started if isinstance(sb, DockerSandbox)]
    try:  # one failed start must not leak the other 31
        assert len(sandboxes) == 32, [exc for exc in started if isinstance(exc, BaseException)]
        results = await asyncio.gather(*(
            sb.aexec(["python3", "-c", f"print({i} * {i})"]) for i, sb in enumerate(sandboxes)))
        assert [r.stdout for r in results] == [f"{i * i}\n" for i in range(32)]
    finally:
        await asyncio.gather(*(sb.aclose() for sb in sandboxes))


def test_sync_and_async_paths_agree(spec):
    cmd = "echo $((6*7)); echo e >&2; exit 2"
    with DockerSandbox.create(spec) as sb:
        sync = sb.exec(cmd)
        sb.write_file("f", "x")
        assert sb.read_file("f") == b"x"
    async def via_async():
        async with await DockerSandbox.acreate(spec) as asb:
            return await asb.aexec(cmd)
    other = asyncio.run(via_async())
    assert (sync.exit_code, sync.stdout, sync.stderr) == (
        other.exit_code, other.stdout, other.stderr
    )


async def test_missing_image_names_the_build_command():
    with pytest.raises(ImageNotFound, match="toolgym sandbox build"):
        await DockerSandbox.acreate(SandboxSpec(image="toolgym/does-not-exist:nope"))


async def test_close_twice_is_harmless(spec):
    sb = await DockerSandbox.acreate(spec)
    await sb.aclose()
    await sb.aclose()
    with pytest.raises(SandboxCrashed, match="closed"):
        await sb.aexec("true")
