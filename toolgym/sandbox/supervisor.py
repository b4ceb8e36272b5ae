"""The exec supervisor: one small process per sandbox that runs commands on request.

Starting a process with ``docker exec`` costs ~70-90 ms. Instead, toolgym
starts this script once per sandbox (``python3 -c SOURCE``) and talks to it
over its stdin/stdout with length-prefixed JSON frames; each ``exec`` is one
request, answered in about a millisecond. The script uses only the standard
library, because it runs with whatever python3 the sandbox image has.

Requests (``op``): ``ping``, ``exec``, ``write_file``, ``read_file`` and
``reset`` (kill every other process of the sandbox user and wipe the work
dirs). Each request carries an ``id`` that its reply repeats, so several
requests may be in flight at once; each is served on its own thread.

Out of the agent's reach. In a Docker sandbox the supervisor runs as the
platform's uid (root of the container, holding only CAP_SETUID, CAP_SETGID and
CAP_KILL: no file-permission bypass) and starts every agent command under
:data:`AGENT_UID` in a forked child; the kernel then denies the agent's
processes signals, ``ptrace``, ``/proc/<pid>/mem`` and ``/proc/<pid>/fd`` of
the supervisor and of ``trusted`` commands (those keep the platform's uid).
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

import base64
import hashlib
import json
import os
import selectors
import shutil
import signal
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

    def add_popen(self, *args, **kwargs):
        proc = subprocess.Popen(*args, **kwargs)
        self.pgids.add(proc.pid)
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
    try:
        proc = SPAWNED_GROUPS.add_popen(
            argv,
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=req.get("cwd") or None,
            env=env,
            start_new_session=True,
            **as_agent,
        )
    except OSError as exc:  # no such file, fork failed under the pids cap, bad cwd
        return {"exit_code": 127, "stdout": "", "stderr": b64(f"{exc}\n".encode()),
                "timed_out": False, "truncated": False, "duration_s": time.monotonic() - start}
    fd_out, fd_err = proc.stdout.fileno(), proc.stderr.fileno()
    out = {fd_out: bytearray(), fd_err: bytearray()}
    truncated = False
    timed_out = False
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    sel.register(proc.stderr, selectors.EVENT_READ)
    if stdin_data is not None:
        os.set_blocking(proc.stdin.fileno(), False)
        if stdin_data:
            sel.register(proc.stdin, selectors.EVENT_WRITE)
        else:
            proc.stdin.close()
    pending = memoryview(stdin_data or b"")
    deadline = start + timeout
    exit_deadline = None
    while sel.get_map():
        now = time.monotonic()
        if not timed_out and now >= deadline:
            timed_out = True
            _kill_group(proc.pid)
            exit_deadline = now + AFTER_EXIT_GRACE_S
        if exit_deadline is None and proc.poll() is not None:
            exit_deadline = now + AFTER_EXIT_GRACE_S
        if exit_deadline is not None and now >= exit_deadline:
            break
        limit = exit_deadline if exit_deadline is not None else deadline
        for key, _ in sel.select(timeout=max(0.0, min(limit - now, 0.05))):
            if key.fileobj is proc.stdin:
                try:
                    n = os.write(key.fd, pending[:65536])
                except (BrokenPipeError, BlockingIOError):
                    n = len(pending)
                pending = pending[n:]
                if not pending:
                    sel.unregister(proc.stdin)
                    proc.stdin.close()
                continue
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fileobj)
                continue
            buf = out[key.fd]
            room = cap - len(buf)
            if len(chunk) > room:
                truncated = True
                chunk = chunk[: max(room, 0)]
            buf += chunk
    sel.close()
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream is not None and not stream.closed:
            stream.close()
    try:
        code = proc.wait(timeout=max(0.0, deadline - time.monotonic()) + 1.0)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid)
        code = proc.wait()
    return {
        "exit_code": code,
        "stdout": b64(bytes(out[fd_out])),
        "stderr": b64(bytes(out[fd_err])),
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
    killed = SPAWNED_GROUPS.kill_all()
    sweep = req.get("sweep_uid", True)
    killed += _kill_agent_processes() if sweep else 0
    _wipe(req.get("wipe", []))
    if sweep:
        _remove_sysv_ipc()
    return {"killed": killed, "uid": os.getuid(), "proof": _proof(req.get("challenge", ""))}


def ping(req):
    """Answer who this is; the first ping of a channel hands over the host's token."""
    if req.get("token") and not TOKEN:
        TOKEN.append(req["token"])
    return {"pid": os.getpid(), "uid": os.getuid()}


OPS = {
    "ping": ping,
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
        try:
            threading.Thread(target=handle, args=(req,), daemon=True).start()
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
    serve(sys.stdin.buffer, sys.stdout.buffer)
