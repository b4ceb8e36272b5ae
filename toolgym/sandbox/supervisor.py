"""The exec supervisor: one small process per sandbox that runs commands on request.

Starting a process with ``docker exec`` costs ~70-90 ms. Instead, toolgym
starts this script once per sandbox (``python3 -c SOURCE``) and talks to it
over its stdin/stdout with length-prefixed JSON frames; each ``exec`` is one
request, answered in about a millisecond. The script uses only the standard
library, because it runs with whatever python3 the sandbox image has.

Requests (``op``): ``ping``, ``exec``, ``write_file``, ``read_file``,
``reset`` (kill every other process of the sandbox user and wipe the work
dirs) and ``attach`` (serve the host over a unix socket it listens on, too).
Each request carries an ``id`` that its reply repeats, so several requests may
be in flight at once; each is served on its own thread.

Out of the agent's reach. In a Docker sandbox the supervisor runs as the
platform's uid (root of the container, holding only CAP_SETUID, CAP_SETGID and
CAP_KILL: no file-permission bypass) and every agent command runs under
:data:`AGENT_UID`, started by the spawner (:data:`SPAWNER_SOURCE`, a small
non-dumpable process of that uid) or, without one, in a child forked here; the
kernel then denies the agent's processes signals, ``ptrace``,
``/proc/<pid>/mem`` and ``/proc/<pid>/fd`` of the supervisor and of
``trusted`` commands (those keep the platform's uid and always fork here).
The host starts it as ``python3 -I -S -c SOURCE`` with its cwd at ``/``: no
directory the agent can write is on its ``sys.path``, and its code is the
host's copy, never a file in the sandbox. File operations and the wipe of a
reset run with the agent's file-system uid (``setfsuid``, per thread), so the
agent's files stay the agent's. The first ``ping`` hands it a secret token;
each ``reset`` reply proves the token (a hash over a fresh challenge), so the
host knows that what answers is the supervisor it started.

Configuration comes as one JSON argument: ``agent_uid`` (None: commands keep
the supervisor's uid, as in a bubblewrap sandbox where both are uid 1000) and
``rlimits`` (where no cgroup enforces limits).
"""

import _thread
import base64
import errno
import hashlib
import json
import os
import select
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024
AGENT_UID = 1000
"""uid and gid of the agent's commands in a Docker sandbox."""
CONFIG: dict[str, Any] = {"agent_uid": None, "rlimits": {}}
"""Set from the command line at start (see the module docstring)."""
TOKEN: list[str] = []
"""The secret of the host that started this supervisor (first ping), never sent back."""
AFTER_EXIT_GRACE_S = 0.2
"""How long to keep reading output after the command exits: background jobs may hold the pipe."""


def encode_frame(message):
    """Serialise one message as a length-prefixed JSON frame."""
    body = json.dumps(message, separators=(",", ":")).encode()
    return HEADER.pack(len(body)) + body


def b64(data):
    return base64.b64encode(data).decode("ascii")


def unb64(text):
    return base64.b64decode(text.encode("ascii"))


class _Groups:
    """Process groups this supervisor started (each command leads its own)."""

    def __init__(self):
        self.pgids = set()

    def add(self, pgid):
        self.pgids.add(pgid)

    def add_popen(self, *args, **kwargs):
        proc = subprocess.Popen(*args, **kwargs)
        self.add(proc.pid)
        return proc

    def kill_all(self):
        """Kill every group; return how many still had a live process."""
        alive = sum(_kill_group(pgid) for pgid in self.pgids)
        self.pgids.clear()
        return alive


SPAWNED_GROUPS = _Groups()


def _kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


SPAWNER_SOURCE = r"""
import ctypes, json, os, selectors, socket, subprocess, sys
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no ptrace, /proc/self/{mem,fd}
sock = socket.socket(fileno=int(sys.argv[1]))
sel = selectors.DefaultSelector()
sel.register(sock, selectors.EVENT_READ)
def tell(reply, msg):
    try:
        reply.send(json.dumps(msg).encode(), socket.MSG_NOSIGNAL)
    except OSError:  # the supervisor no longer waits for it
        pass
sock.send(json.dumps({"ready": os.getpid()}).encode())
while True:
    for key, _ in sel.select():
        if key.fileobj is sock:
            msg, fds, _, _ = socket.recv_fds(sock, 1 << 18, 4)
            if not msg:
                sys.exit(0)
            req, reply = json.loads(msg), socket.socket(fileno=fds.pop())
            try:
                proc = subprocess.Popen(req["argv"], stdin=fds[0], stdout=fds[1], stderr=fds[2],
                                        cwd=req["cwd"], env=req["env"], start_new_session=True)
            except OSError as exc:
                tell(reply, {"error": str(exc)})
                reply.close()
            else:
                sel.register(os.pidfd_open(proc.pid), selectors.EVENT_READ, (reply, proc))
                tell(reply, {"pid": proc.pid})
            finally:
                for fd in fds:
                    os.close(fd)
        else:
            reply, proc = key.data
            sel.unregister(key.fd)
            os.close(key.fd)
            tell(reply, {"exit": proc.wait()})
            reply.close()
"""
"""The spawner: a small process of the agent's uid that starts the agent's commands.

A fork that switches uid cannot use ``vfork`` and copies the supervisor's page
tables: ~1 ms more per command than a ``vfork`` of the same uid (see the
README's Performance section). So the supervisor keeps one such process per
episode, started at its own start and after each reset (which stops it first),
and hands it each command over a ``SOCK_SEQPACKET`` socket pair with four
descriptors: the command's three pipe ends and one end of a socket pair of the
command's own, on which the spawner tells its pid and, later, its exit status
(the thread that runs the command reads them there itself: no thread hop). It
holds nothing the agent's own processes could not: it is of the agent's uid,
non-dumpable (they cannot trace it or take its sockets), started isolated
(``-I -S``, cwd ``/``) from this copy of its source while no process of the
agent's runs, and what it says is checked (a pid must be the agent's before it
is ever signalled; a command's end is seen through a pidfd of the supervisor's
own). Killing or stopping it costs the agent only its own speed: a command it
was given is never started twice; its status may come back unknown (255, with
a note on stderr) and later commands fork from the supervisor until the next
reset."""

SPAWNER_WAIT_S = 5.0
"""How long a command waits for the spawner before it is dropped (stopped by the agent)."""
LOST_NOTE = (b"\n[toolgym] the process that starts your commands was stopped or killed before it"
             b" told how this one ended (exit status unknown); later ones start without it\n")
SPAWNER_EXIT_WAIT_S = 1.0
"""How long after a command ended its spawner may take to tell the status (~1 ms honest)."""
SPAWNER_REQUEST_BYTES = 200_000
"""The longest command (argv, env) handed to the spawner (it reads up to 256 KiB; a
socket's default send buffer holds ~208 KiB): a longer one forks here."""
SPAWNER_MESSAGE_BYTES = 4096
"""The longest message the supervisor reads from the spawner: an honest one is ~20 bytes."""


class _Started:
    """One command handed to the spawner: its own reply socket, then its pid and exit status."""

    def __init__(self, sock, spawner, reported):
        self.sock = sock  # this command's end of its reply socket pair
        self.spawner = spawner  # the socket of the spawner it was handed to
        self.reported = reported  # that spawner's reported pids (this one's, once told)
        self.pid = None
        self.pidfd = None  # taken while it was the agent's; readable once it has ended
        self.code = None
        self.lost = False  # the spawner went (or was dropped) before it told the status

    def receive(self, timeout):
        """The spawner's next message about this command: None while it is silent for
        ``timeout`` seconds, ``{}`` once it has gone or said something malformed."""
        try:
            if timeout <= 0:
                self.sock.setblocking(False)
            else:
                self.sock.settimeout(timeout)
            data = self.sock.recv(SPAWNER_MESSAGE_BYTES)
            msg = json.loads(data) if data else {}
        except (BlockingIOError, socket.timeout):  # noqa: UP041 - not TimeoutError before 3.10
            return None
        except (OSError, ValueError):
            return {}
        return msg if isinstance(msg, dict) else {}

    def take_exit(self, timeout):
        """Wait up to ``timeout`` for the exit status; True once it is known or lost."""
        if self.code is not None or self.lost:
            return True
        msg = self.receive(timeout)
        if msg is None:
            return False
        if isinstance(msg.get("exit"), int) and not isinstance(msg["exit"], bool):
            self.code = msg["exit"]
        else:  # gone, or not what an honest spawner says
            self.lose()
        return True

    def lose(self):
        """Stop listening to this command's spawner: its status is unknown."""
        self.lost = True
        SPAWNER.stop(self.spawner)


class _Spawner:
    """The supervisor's side of :data:`SPAWNER_SOURCE`: start, hand over commands, stop."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sock = None
        self.proc = None
        self.uid = None
        self.reported = set()  # pids it told of that have not been closed: killed at their deadline
        self.idle = threading.Event()  # no start in progress
        self.idle.set()

    def start_async(self, uid):
        """Start a spawner of ``uid`` on a thread, unless one runs or is starting.

        Until it is up, the agent's commands wait for it (:meth:`spawn`), so no
        process of the agent's exists while it is still traceable (before its
        ``prctl``): a reset has just killed them all.
        """
        with self.lock:
            if self.sock is not None or not self.idle.is_set():
                return
            self.idle.clear()

        def run():
            try:
                self.start(uid)
            finally:
                self.idle.set()

        threading.Thread(target=run, daemon=True).start()

    def start(self, uid):
        """Start a spawner of ``uid`` (blocking, ~20 ms); on failure commands fork here."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", SPAWNER_SOURCE, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), cwd="/", env={"PATH": os.environ.get("PATH", "")},
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, user=uid, group=uid, extra_groups=[])
        except OSError:
            ours.close()
            return
        finally:
            theirs.close()
        ours.settimeout(5.0)
        try:
            hello = json.loads(ours.recv(SPAWNER_MESSAGE_BYTES) or b"{}")
        except (OSError, ValueError):
            hello = {}
        if not isinstance(hello, dict) or hello.get("ready") != proc.pid or _owner(
                proc.pid) != uid:
            ours.close()
            _kill_group(proc.pid)
            proc.wait()
            return
        with self.lock:
            self.sock, self.proc, self.uid, self.reported = ours, proc, uid, set()

    def spawn(self, argv, cwd, env, fds, wait_s):
        """Have the spawner start ``argv`` on ``fds``; None if there is no spawner to ask.

        Once asked, the command is never started a second time here: a spawner
        that says nothing for ``wait_s`` (stopped by the agent) is dropped and the
        command it may have started killed, and one that dies first, or reports
        a pid that is not the agent's, leaves the command "lost" (``pid`` None,
        exit status unknown).

        Raises:
            OSError: the spawner could not start the command (as Popen would).
        """
        self.idle.wait(wait_s)
        with self.lock:
            spawner, uid, reported = self.sock, self.uid, self.reported
        if spawner is None:
            return None
        body = json.dumps({"argv": argv, "cwd": cwd, "env": env}).encode()
        if len(body) > SPAWNER_REQUEST_BYTES:
            return None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:  # MSG_NOSIGNAL: a spawner the agent killed must not SIGPIPE the supervisor
            socket.send_fds(spawner, [body], [*fds, theirs.fileno()], socket.MSG_NOSIGNAL)
        except OSError as exc:  # too long a message, or the spawner is gone: it never saw it
            ours.close()
            if exc.errno != errno.EMSGSIZE:
                self.stop(spawner)
            return None
        finally:
            theirs.close()
        started = _Started(ours, spawner, reported)
        msg = started.receive(wait_s)
        if msg is not None and "error" in msg:
            ours.close()
            raise OSError(str(msg["error"]))
        pid = (msg or {}).get("pid")
        try:
            if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 1:
                raise PermissionError  # silent (stopped by the agent), gone, or malformed
            started.pidfd = _pidfd_of(pid, uid)
        except PermissionError:  # a pid that is not the agent's own: never signal it
            started.lose()
            return started
        started.pid = pid
        if started.pidfd is not None:  # else it has exited (and was reaped) already
            reported.add(pid)
            SPAWNED_GROUPS.add(pid)
        return started

    def stop(self, sock=None):
        """Drop the spawner (``sock``: only if it is still that one) and what it started
        but did not report; the commands that wait on it then see their sockets close."""
        with self.lock:
            if self.sock is None or (sock is not None and sock is not self.sock):
                return
            sock, proc, self.sock, self.proc = self.sock, self.proc, None, None
            reported = set(self.reported)
        sock.close()
        os.kill(proc.pid, signal.SIGSTOP)  # it starts nothing more while its children are read
        for pid in _children(proc.pid):
            if pid not in reported:  # started, never reported: nobody could kill it at its deadline
                _kill_group(pid)
                _kill(pid)
        _kill_group(proc.pid)
        proc.wait()


SPAWNER = _Spawner()


def _children(ppid):
    """Pids whose parent is ``ppid`` (``/proc/<pid>/stat`` is readable across uids)."""
    pids = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == ppid:
            pids.append(int(name))
    return pids


def _owner(pid):
    """The uid of process ``pid``; None if there is none."""
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def _unreaped(pidfd):
    """Whether the process of ``pidfd`` is still there (running, or ended and not reaped)."""
    try:
        signal.pidfd_send_signal(pidfd, 0)
    except ProcessLookupError:
        return False
    return True


def _pidfd_of(pid, uid):
    """A pidfd of process ``pid``, checked to be ``uid``'s; None if it is gone (reaped).

    ``stat`` of ``/proc/<pid>`` answers uid 0 for a process its parent is
    reaping at that moment (a command that ended at once: ~1 in 900 ``true``),
    so the owner read counts only once the pidfd, taken before it, shows the
    process still there after it: until it is reaped its pid is not reused.

    Raises:
        PermissionError: ``pid`` is a process of another uid.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return None
    owner = _owner(pid)
    if not _unreaped(pidfd):
        os.close(pidfd)
        return None
    if owner != uid:
        os.close(pidfd)
        raise PermissionError(f"process {pid} is uid {owner}'s, not {uid}'s")
    return pidfd


class _Process:
    """A started command, whichever way it was started: ``pid``, ``poll()``, ``wait(timeout)``."""

    def __init__(self, popen=None, started=None):
        self.popen, self.started = popen, started
        self.pid = popen.pid if popen is not None else started.pid

    @property
    def lost(self):
        """Started by a spawner that went before it told the exit status (or the pid)."""
        return self.started is not None and self.started.lost

    def kill(self):
        """SIGKILL the command's process group (the spawner's: while its leader, checked to
        be the agent's when its pidfd was taken, is not yet reaped, so its pid is its own)."""
        if self.popen is not None or (
                self.started.pidfd is not None and _unreaped(self.started.pidfd)):
            _kill_group(self.pid)

    def poll(self):
        if self.popen is not None:
            return self.popen.poll()
        return self._code() if self.started.take_exit(0) else None

    def wait(self, timeout):
        """The exit status; ``subprocess.TimeoutExpired`` after ``timeout`` seconds.

        A spawner that stays silent about a command that has ended (stopped by
        the agent) is dropped after :data:`SPAWNER_EXIT_WAIT_S`: the status is unknown.
        """
        if self.popen is not None:
            return self.popen.wait(timeout=timeout)
        end = time.monotonic() + (timeout if timeout is not None else float("inf"))
        ended = None
        while not self.started.take_exit(max(0.0, min(0.05, end - time.monotonic()))):
            now = time.monotonic()
            if ended is None and self._ended():
                ended = now
            if ended is not None and now - ended >= SPAWNER_EXIT_WAIT_S:
                self.drop()
                break
            if now >= end:
                raise subprocess.TimeoutExpired("agent command", timeout)
        return self._code()

    def drop(self):
        """Stop waiting on the spawner that started this command (it is stopped or lying)."""
        if self.started is not None:
            self.started.lose()

    def close(self):
        if self.started is not None:
            self.started.sock.close()
            self.started.reported.discard(self.pid)
            if self.started.pidfd is not None:
                os.close(self.started.pidfd)
                self.started.pidfd = None

    def _ended(self):
        pidfd = self.started.pidfd
        return pidfd is None or bool(select.select([pidfd], [], [], 0)[0])

    def _code(self):
        code = self.started.code
        return code if isinstance(code, int) else 255  # the spawner died first: unknown


def _start(argv, cwd, env, fds, as_agent, timeout):
    """Start ``argv`` on ``fds`` (stdin, stdout, stderr): through the spawner when the
    command is the agent's and one runs, else by forking here."""
    if as_agent:
        started = SPAWNER.spawn(argv, cwd, env, fds, min(SPAWNER_WAIT_S, timeout + 1.0))
        if started is not None:
            return _Process(started=started)
    popen = SPAWNED_GROUPS.add_popen(
        argv, stdin=fds[0], stdout=fds[1], stderr=fds[2], cwd=cwd, env=env,
        start_new_session=True, **as_agent)
    return _Process(popen=popen)


def run_command(req):
    """Run one command under a deadline and an output cap; never raises for the command's sake."""
    cmd = req["cmd"]
    argv = ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
    env = dict(os.environ)
    env.update(req.get("env") or {})
    cap = int(req["output_bytes"])
    timeout = float(req["timeout"])
    stdin_data = unb64(req["stdin"]) if req.get("stdin") is not None else None
    start = time.monotonic()
    agent = CONFIG["agent_uid"]
    as_agent = {} if req.get("trusted") or agent is None else {
        "user": agent, "group": agent, "extra_groups": []}
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_r, in_w = os.pipe() if stdin_data is not None else (os.open(os.devnull, os.O_RDONLY), None)
    try:
        proc = _start(argv, req.get("cwd") or None, env, [in_r, out_w, err_w], as_agent, timeout)
    except OSError as exc:  # no such file, fork failed under the pids cap, bad cwd
        for fd in (out_r, out_w, err_r, err_w, in_r, in_w):
            if fd is not None:
                os.close(fd)
        return {"exit_code": 127, "stdout": "", "stderr": b64(f"{exc}\n".encode()),
                "timed_out": False, "truncated": False, "duration_s": time.monotonic() - start}
    for fd in (in_r, out_w, err_w):
        os.close(fd)
    out = {out_r: bytearray(), err_r: bytearray()}
    truncated = False
    timed_out = False
    sel = selectors.DefaultSelector()
    sel.register(out_r, selectors.EVENT_READ)
    sel.register(err_r, selectors.EVENT_READ)
    if in_w is not None:
        os.set_blocking(in_w, False)
        if stdin_data:
            sel.register(in_w, selectors.EVENT_WRITE)
        else:
            os.close(in_w)
            in_w = None
    pending = memoryview(stdin_data or b"")
    deadline = start + timeout
    exit_deadline = None
    while sel.get_map():
        now = time.monotonic()
        if not timed_out and now >= deadline:
            timed_out = True
            proc.kill()
            exit_deadline = now + AFTER_EXIT_GRACE_S
        if exit_deadline is None and proc.poll() is not None:
            exit_deadline = now + AFTER_EXIT_GRACE_S
        if exit_deadline is not None and now >= exit_deadline:
            break
        limit = exit_deadline if exit_deadline is not None else deadline
        for key, _ in sel.select(timeout=max(0.0, min(limit - now, 0.05))):
            if key.fd == in_w:
                try:
                    n = os.write(in_w, pending[:65536])
                except (BrokenPipeError, BlockingIOError):
                    n = len(pending)
                pending = pending[n:]
                if not pending:
                    sel.unregister(in_w)
                    os.close(in_w)
                    in_w = None
                continue
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fd)
                continue
            buf = out[key.fd]
            room = cap - len(buf)
            if len(chunk) > room:
                truncated = True
                chunk = chunk[: max(room, 0)]
            buf += chunk
    sel.close()
    for fd in (out_r, err_r, in_w):
        if fd is not None:
            os.close(fd)
    try:
        code = proc.wait(timeout=max(0.0, deadline - time.monotonic()) + 1.0)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        try:
            code = proc.wait(timeout=SPAWNER_EXIT_WAIT_S + 1.0)
        except subprocess.TimeoutExpired:  # a spawner that never saw it end (uid unknown)
            proc.drop()
            code = proc.wait(timeout=None)
    proc.close()
    if proc.lost:
        out[err_r] += LOST_NOTE
    return {
        "exit_code": code,
        "stdout": b64(bytes(out[out_r])),
        "stderr": b64(bytes(out[err_r])),
        "timed_out": timed_out,
        "truncated": truncated,
        "duration_s": time.monotonic() - start,
    }


class _FilesAs:
    """Within the block, this thread's file accesses are checked as ``uid`` (None: as itself).

    ``setfsuid`` is per thread (glibc does not spread it to other threads as it
    does ``setuid``), so the other requests in flight keep the supervisor's
    identity; the previous one is restored on exit.
    """

    _libc = None

    def __init__(self, uid):
        self.uid = None if uid is None or uid == os.getuid() else uid

    def __enter__(self):
        if self.uid is not None:
            if _FilesAs._libc is None:
                import ctypes

                _FilesAs._libc = ctypes.CDLL(None, use_errno=True)
            libc = _FilesAs._libc
            libc.setfsgid(self.uid)
            libc.setfsuid(self.uid)
            if libc.setfsuid(self.uid) != self.uid:  # answers the fsuid in force
                raise PermissionError(f"cannot take file-system uid {self.uid}")
        return self

    def __exit__(self, *exc):
        if self.uid is not None:
            _FilesAs._libc.setfsuid(os.getuid())
            _FilesAs._libc.setfsgid(os.getgid())


def _file_owner(req):
    """Whose rights a file request has: the agent's unless the platform asked (trusted)."""
    return None if req.get("trusted") else CONFIG["agent_uid"]


def write_file(req):
    path = req["path"]
    with _FilesAs(_file_owner(req)):
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, int(req.get("mode", 0o644)))
        with os.fdopen(fd, "wb") as f:
            f.write(unb64(req["data"]))
    return {}


def read_file(req):
    with _FilesAs(_file_owner(req)), open(req["path"], "rb") as f:
        data = f.read(int(req["max_bytes"]) + 1)
    if len(data) > int(req["max_bytes"]):
        raise ValueError(f"{req['path']} is larger than {req['max_bytes']} bytes")
    return {"data": b64(data)}


def _agent_processes():
    """Pids of the agent's uid (the supervisor's own where commands keep it)."""
    me = os.getpid()
    uid = CONFIG["agent_uid"] if CONFIG["agent_uid"] is not None else os.getuid()
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in (me, 1):
            continue
        try:
            if os.stat(f"/proc/{name}").st_uid == uid:
                pids.append(int(name))
        except FileNotFoundError:
            pass
    return pids


def _kill_agent_processes():
    killed = 0
    for _ in range(50):
        pids = _agent_processes()
        if not pids:
            return killed
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.005)
    raise RuntimeError("processes kept respawning during reset")


def _entries(d):
    try:
        return os.listdir(d)
    except (PermissionError, FileNotFoundError):
        return []


def _empty(d):
    """Remove what this identity may remove under ``d``, making the owner's locked dirs open."""
    for name in _entries(d):
        p = os.path.join(d, name)
        if os.path.isdir(p) and not os.path.islink(p):
            for root, dirs, _ in os.walk(p, onerror=lambda e: None):
                for sub in [root, *(os.path.join(root, x) for x in dirs)]:
                    try:  # chmod 000 on a dir of one's own must not keep it
                        os.chmod(sub, 0o700)
                    except OSError:
                        pass
            shutil.rmtree(p, ignore_errors=True)
        else:
            try:
                os.unlink(p)
            except (FileNotFoundError, PermissionError):
                pass


def _wipe(dirs):
    """Empty ``dirs``: as the agent's file uid first, then as the supervisor's for what
    trusted commands left (each may only remove its own), alternating until empty."""
    for turn in range(4):
        left = [d for d in dirs if _entries(d)]
        if not left:
            return
        with _FilesAs(CONFIG["agent_uid"] if turn % 2 == 0 else None):
            for d in left:
                _empty(d)
    left = [d for d in dirs if _entries(d)]
    if left:
        raise RuntimeError(f"could not empty {', '.join(left)}")


IPC_KINDS = ("shm", "msg", "sem")
REMOVE_SYSV_IPC = """
import ctypes
libc = ctypes.CDLL(None)
rm = {"shm": lambda i: libc.shmctl(i, 0, None), "msg": lambda i: libc.msgctl(i, 0, None),
      "sem": lambda i: libc.semctl(i, 0, 0)}  # IPC_RMID == 0
for kind, remove in rm.items():
    with open("/proc/sysvipc/" + kind) as f:
        for line in list(f)[1:]:
            remove(int(line.split()[1]))
"""
"""Removes every SysV segment, queue and semaphore set its uid may remove (IPC_RMID)."""


def _sysv_ipc_left():
    count = 0
    for kind in IPC_KINDS:
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                count += len(f.readlines()) - 1
        except FileNotFoundError:
            pass
    return count


def _remove_sysv_ipc():
    """SysV IPC outlives processes: remove what the agent (then trusted commands) made.

    Only the owner may remove an object and the supervisor has no CAP_IPC_OWNER,
    so a small child does it under each uid; none is started when nothing is left.
    """
    if not _sysv_ipc_left():
        return
    agent = CONFIG["agent_uid"]
    for uid in ([agent] if agent is not None else []) + [None]:
        as_uid = {} if uid is None else {"user": uid, "group": uid, "extra_groups": []}
        subprocess.run([sys.executable, "-I", "-S", "-c", REMOVE_SYSV_IPC], cwd="/",
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10,
                       check=False, **as_uid)
    if _sysv_ipc_left():
        raise RuntimeError("SysV IPC objects survived the reset")


def _proof(challenge):
    return hashlib.sha256((TOKEN[0] + challenge).encode()).hexdigest() if TOKEN else ""


def reset(req):
    """Kill what earlier commands left running, then empty the work dirs and the IPC.

    With ``sweep_uid`` (inside a container or namespace, where every process of
    the agent's uid belongs to the sandbox) every process of that uid is killed,
    also those that left their process group, and SysV IPC objects are removed;
    without it only the process groups this supervisor started. The reply proves
    the host's token for the request's ``challenge``.
    """
    # A child that was still inside its command's group when the group died
    # counts too: whether it had reached its own setsid() yet is a race.
    SPAWNER.idle.wait(SPAWNER_WAIT_S)
    SPAWNER.stop()
    killed = SPAWNED_GROUPS.kill_all()
    sweep = req.get("sweep_uid", True)
    killed += _kill_agent_processes() if sweep else 0
    _wipe(req.get("wipe", []))
    if sweep:
        _remove_sysv_ipc()
    if CONFIG["agent_uid"] is not None:
        SPAWNER.start_async(CONFIG["agent_uid"])
    return {"killed": killed, "uid": os.getuid(), "proof": _proof(req.get("challenge", ""))}


def ping(req):
    """Answer who this is; the first ping of a channel hands over the host's token."""
    if req.get("token") and not TOKEN:
        TOKEN.append(req["token"])
    return {"pid": os.getpid(), "uid": os.getuid()}


def attach(req):
    """Serve the host also over the unix socket at ``path``, which skips Docker's exec stream
    (~0.7 ms a round trip) for a direct one (~0.01 ms).

    The host listens there (a read-only bind mount in a directory only this uid can
    enter); this connects, proves the token for ``challenge`` as the first frame on the
    socket, and then serves requests arriving on either channel, each answered on the one
    it came in on. The socket is not inherited by any command (close-on-exec).
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(req["path"])
        sock.sendall(encode_frame({"proof": _proof(req.get("challenge", ""))}))
    except OSError:
        sock.close()
        raise
    _thread.start_new_thread(serve, (sock.makefile("rb"), sock.makefile("wb")))
    return {}


OPS = {
    "ping": ping,
    "attach": attach,
    "exec": run_command,
    "write_file": write_file,
    "read_file": read_file,
    "reset": reset,
}


def serve(stdin, stdout):
    lock = threading.Lock()

    def reply(message):
        frame = encode_frame(message)
        with lock:
            stdout.write(frame)
            stdout.flush()

    def handle(req):
        try:
            result = OPS[req["op"]](req)
            result["id"] = req["id"]
            reply(result)
        except Exception as exc:  # reported to the host, which raises or observes it
            reply({"id": req["id"], "error": f"{type(exc).__name__}: {exc}"})

    while True:
        header = stdin.read(HEADER.size)
        if len(header) < HEADER.size:
            return
        (size,) = HEADER.unpack(header)
        if size > MAX_FRAME:
            return
        req = json.loads(stdin.read(size))
        try:  # not threading.Thread: its start() waits for the thread to run (~0.1 ms)
            _thread.start_new_thread(handle, (req,))
        except RuntimeError:  # can't start a thread: the pids cap is exhausted
            handle(req)


def configure(argv):
    """Apply the JSON configuration argument, if any (see the module docstring)."""
    if len(argv) > 1:
        CONFIG.update(json.loads(argv[1]))
    if CONFIG["rlimits"]:  # {"RLIMIT_AS": bytes, ...}: where no cgroup enforces limits
        import resource

        for name, value in CONFIG["rlimits"].items():
            resource.setrlimit(getattr(resource, name), (value, value))


if __name__ == "__main__":
    configure(sys.argv)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if CONFIG["agent_uid"] is not None:
        SPAWNER.start_async(CONFIG["agent_uid"])
    serve(sys.stdin.buffer, sys.stdout.buffer)
