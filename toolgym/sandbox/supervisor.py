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
"""

import base64
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

HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024
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
    try:
        proc = SPAWNED_GROUPS.add_popen(
            argv,
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=req.get("cwd") or None,
            env=env,
            start_new_session=True,
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


def write_file(req):
    path = req["path"]
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, int(req.get("mode", 0o644)))
    with os.fdopen(fd, "wb") as f:
        f.write(unb64(req["data"]))
    return {}


def read_file(req):
    with open(req["path"], "rb") as f:
        data = f.read(int(req["max_bytes"]) + 1)
    if len(data) > int(req["max_bytes"]):
        raise ValueError(f"{req['path']} is larger than {req['max_bytes']} bytes")
    return {"data": b64(data)}


def _own_processes():
    me, uid = os.getpid(), os.getuid()
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


def _kill_own_processes():
    killed = 0
    for _ in range(50):
        pids = _own_processes()
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


def reset(req):
    """Kill what earlier commands left running, then empty the work dirs.

    With ``sweep_uid`` (inside a container or namespace, where every process of
    this uid belongs to the sandbox) every other process of the uid is killed,
    also those that left their process group; without it only the process
    groups this supervisor started.
    """
    # A child that was still inside its command's group when the group died
    # counts too: whether it had reached its own setsid() yet is a race.
    killed = SPAWNED_GROUPS.kill_all()
    killed += _kill_own_processes() if req.get("sweep_uid", True) else 0
    for d in req.get("wipe", []):
        for name in os.listdir(d):
            p = os.path.join(d, name)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
        if os.listdir(d):
            raise RuntimeError(f"could not empty {d}")
    return {"killed": killed}


OPS = {
    "ping": lambda req: {"pid": os.getpid()},
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


if __name__ == "__main__":
    if len(sys.argv) > 1:  # {"RLIMIT_AS": bytes, ...}: where no cgroup enforces limits
        import resource

        for _name, _value in json.loads(sys.argv[1]).items():
            resource.setrlimit(getattr(resource, _name), (_value, _value))
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    serve(sys.stdin.buffer, sys.stdout.buffer)
