"""The direct channel: requests past Docker's exec stream, over a socket only the supervisor
reaches and only a supervisor with the token may serve."""

from __future__ import annotations

import asyncio
import os
import stat

import pytest

import toolgym.sandbox.docker as docker_backend
from toolgym.errors import ImageNotFound
from toolgym.sandbox import host_socket
from toolgym.sandbox.base import PLATFORM_DIR
from toolgym.sandbox.docker import DockerSandbox, SandboxSpec
from toolgym.sandbox.spec import SERVICE_DIR

pytestmark = pytest.mark.docker

CONNECT = f"""
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect({host_socket.CONTAINER_PATH!r})
except OSError as exc:
    print(type(exc).__name__)
else:
    print("connected")
"""


async def test_requests_go_over_the_socket_not_the_exec_stream(sandbox):
    channel = sandbox._channel  # noqa: SLF001
    assert channel.direct and sandbox.host_socket is not None
    exec_stream = channel._transports[0]  # noqa: SLF001

    async def refuse(data: bytes) -> None:
        raise AssertionError("a request went through Docker's exec stream")

    exec_stream.write = refuse  # type: ignore[method-assign]
    assert (await sandbox.aexec("echo direct")).stdout == "direct\n"
    await sandbox.awrite_file("f", "x")
    assert await sandbox.aread_file("f") == b"x"
    assert await sandbox.areset() == 0
    assert sandbox.events["attach_failed"] == 0


async def test_the_agent_cannot_reach_the_socket_nor_hold_it(sandbox):
    r = await sandbox.aexec(["python3", "-c", CONNECT])
    assert r.stdout == "PermissionError\n", r
    assert "Permission denied" in (await sandbox.aexec(f"ls {host_socket.CONTAINER_DIR}")).stderr
    # No descriptor of the supervisor's (its end of the socket) leaks into a command.
    fds = await sandbox.aexec("ls -l /proc/self/fd")
    assert "socket:" not in fds.stdout and len(fds.stdout.splitlines()) == 5  # total, 0-3
    trusted = await sandbox.aexec("ls -l /proc/self/fd", trusted=True)
    assert "socket:" not in trusted.stdout
    # On the host: a 0700 directory of this process's user; in the container: read-only.
    parent = sandbox.host_socket.path.parent
    assert stat.S_IMODE(parent.stat().st_mode) == 0o700 and parent.stat().st_uid == os.getuid()
    write = await sandbox.aexec(f"rm -f {host_socket.CONTAINER_PATH}; echo $?", trusted=True)
    assert write.stdout.strip() != "0" and sandbox.host_socket.path.exists()


async def test_a_connection_without_the_token_is_refused_and_the_real_one_taken(sandbox):
    forger = f"""
import json, socket, struct, time
s = socket.socket(socket.AF_UNIX)
s.connect({host_socket.CONTAINER_PATH!r})
body = json.dumps({{"proof": "0" * 64}}).encode()
s.sendall(struct.pack(">I", len(body)) + body)
s.settimeout(30)
end = "closed" if s.recv(1) == b"" else "served"
open("/tmp/forger", "w").write(end)
"""
    # Root of the container (a trusted command) queues a forged proof, then the
    # supervisor is killed: the new one's attach meets the forgery first.
    forging = asyncio.ensure_future(sandbox.aexec(["python3", "-c", forger], trusted=True,
                                                  timeout=40))
    await asyncio.sleep(1.0)
    pid = sandbox._channel.supervisor_pid  # noqa: SLF001
    await sandbox.aexec(f"kill -9 {pid}", trusted=True)
    assert (await sandbox.aexec("echo back")).stdout == "back\n"
    assert sandbox._channel.direct and sandbox.events["attach_failed"] == 0  # noqa: SLF001
    await forging  # its runner was killed: its result is lost, its process went on
    for _ in range(50):
        r = await sandbox.aexec("cat /tmp/forger", trusted=True)
        if r.ok:
            break
        await asyncio.sleep(0.1)
    assert r.stdout == "closed"
    assert sandbox.events["channel_restarts"] >= 1


async def test_a_sandbox_that_cannot_attach_stays_on_the_exec_stream(spec, monkeypatch):
    # As under a daemon whose /tmp is not this process's: nothing there to connect to.
    options = docker_backend.container_options

    def without_the_mount(*args, **kwargs):
        return {k: v for k, v in options(*args, **kwargs).items() if k != "volumes"}

    monkeypatch.setattr(docker_backend, "container_options", without_the_mount)
    async with await DockerSandbox.acreate(spec) as sb:
        assert not sb._channel.direct and sb.events["attach_failed"] == 1  # noqa: SLF001
        assert sb.host_socket is None
        assert (await sb.aexec("echo hi")).stdout == "hi\n"
        assert await sb.areset() == 0
        pid = sb._channel.supervisor_pid  # noqa: SLF001
        await sb.aexec(f"kill -9 {pid}", trusted=True)
        assert (await sb.aexec("echo back")).stdout == "back\n"
        assert sb.events["attach_failed"] == 1  # tried once, not at every restart


async def test_direct_false_mounts_nothing(spec):
    async with await DockerSandbox.acreate(spec, direct=False) as sb:
        assert sb.host_socket is None and not sb._channel.direct  # noqa: SLF001
        r = await sb.aexec(f"test -e {host_socket.CONTAINER_DIR}; echo $?", trusted=True)
        assert r.stdout == "1\n"
        mounts = await asyncio.to_thread(lambda: sb.container.attrs["Mounts"])
        assert not [m for m in mounts if m.get("Type") == "bind"]


def test_the_socket_dir_is_its_own_mount():
    """Beside the service's and the platform's directories, not over one of them."""
    listening = host_socket.HostSocket()
    try:
        options = docker_backend.container_options(SandboxSpec(service=("sleep", "1")), {},
                                                   host_socket=listening)
    finally:
        listening.close()
    assert {SERVICE_DIR, PLATFORM_DIR, host_socket.CONTAINER_DIR} <= set(options["tmpfs"])
    assert options["tmpfs"][SERVICE_DIR] != options["tmpfs"][host_socket.CONTAINER_DIR]


async def test_no_socket_file_outlives_its_sandbox(spec):
    before = set(host_socket._process_dir().iterdir())  # noqa: SLF001
    sb = await DockerSandbox.acreate(spec)
    path = sb.host_socket.path
    assert path.exists() and stat.S_ISSOCK(path.stat().st_mode)
    await sb.aclose()
    assert not path.exists()
    with pytest.raises(ImageNotFound):
        await DockerSandbox.acreate(SandboxSpec(image="toolgym/does-not-exist:nope"))
    assert set(host_socket._process_dir().iterdir()) == before  # noqa: SLF001


async def test_the_supervisor_of_another_channel_cannot_serve_this_one(sandbox):
    """A supervisor that knows no token (an old one, one started by someone else) proves
    nothing: the host keeps the exec stream."""
    channel = sandbox._channel  # noqa: SLF001
    listener = sandbox.host_socket.listener
    channel._token = "not-the-one-it-was-given"  # noqa: SLF001
    assert not await channel.attach(listener, host_socket.CONTAINER_PATH, timeout=2.0)
    assert channel.direct  # still on the first attach's socket
    assert (await sandbox.aexec("echo still")).stdout == "still\n"
