"""A tiny Python kernel that runs inside the sandbox, and the client that talks to it.

This file runs *in the sandbox*, with whatever python3 the image has, so it
uses only the standard library. The host never imports
it for its functions; :mod:`toolgym.tools.python` sends its source text.

Why a kernel: the ``python`` tool keeps state between calls, like a notebook.
One long-lived process (``serve``) holds the namespace and runs cells sent over
a Unix socket in a state dir (``/tmp/.toolgym-python-<sandbox id>``). Each tool
call is one short ``client`` process, started through the sandbox's normal
``exec``: it starts the kernel if none answers, sends the cell, waits, and
prints the reply. A lock file serialises clients, so concurrent calls queue
instead of interleaving. The kernel lives in its own session, so it survives
the client, and dies with the sandbox's reset (which kills every process of
the sandbox user and wipes /tmp, so a fresh episode starts a fresh kernel).
Python 3.8+ in the image is enough.

Cost per call is one short-lived ``python3 -I -S`` process (~30 ms in the
toolgym/python image on a loaded 2-core host), which is why the client imports
almost nothing.

Time limits, two layers:

1. The kernel arms ``SIGALRM`` (``setitimer``, re-firing every 0.5 s) for the
   cell's timeout; the handler raises :class:`CellTimeout`, a
   ``BaseException`` so ``except Exception`` in the cell does not swallow it.
   Pure-Python loops and blocking calls (``sleep``, ``subprocess.wait``) stop
   there and the namespace is kept.
2. A cell stuck in C code that never checks for signals, or one that ignores
   ``SIGALRM``, gets no reply within timeout + ``KILL_GRACE_S``: the client
   kills the kernel's whole process group, and the next call starts a fresh
   kernel. The reply says state was lost.

Output: for each cell, file descriptors 1 and 2 point to one pipe, so
``print``, tracebacks from threads and child processes' output all arrive, in
order, as a terminal would show them. A reader thread keeps the first
``output_bytes`` and counts the rest.
"""

import _socket
import fcntl
import os
import sys
import time

# The client starts on every call (with -I -S) and imports only the cheap modules above:
# it passes the request and the reply through as bytes (no json), uses _socket (socket and
# signal pull in enum) and starts the kernel, which imports the rest in serve().
ast = io = json = linecache = select = signal = socket = threading = traceback = types = None
SIGKILL = 9

KERNEL_FILENAME = "<toolgym-kernel>"
BOOT = f"import sys; exec(compile(sys.argv[1], {KERNEL_FILENAME!r}, 'exec'))"
"""How both the client and the kernel are started: ``python3 -c BOOT SOURCE MODE STATE_DIR``."""
KILL_GRACE_S = 3.0
"""How long past the timeout the client waits before killing an unresponsive kernel."""
START_TIMEOUT_S = 15.0
VALUE_CHARS = 10000
"""Longest repr of a cell's final expression that is sent back."""


class CellTimeout(BaseException):
    """Raised in the cell when its time is up.

    Not an ``Exception``, so a cell's ``except Exception`` cannot catch it by accident.
    """


def paths(state_dir):
    return {name: os.path.join(state_dir, name)
            for name in ("kernel.sock", "kernel.pid", "kernel.log", "lock", "started")}


# --------------------------------------------------------------------------- kernel


class Capture:
    """Points fds 1 and 2 at a pipe for one cell and keeps the first ``cap`` bytes."""

    def __init__(self, cap):
        self.cap = cap
        self.data = bytearray()
        self.total = 0
        self.stop = threading.Event()

    def __enter__(self):
        self.read_fd, write_fd = os.pipe()
        self.saved = (os.dup(1), os.dup(2))
        os.dup2(write_fd, 1)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        return self

    def _read(self):
        while True:
            ready, _, _ = select.select([self.read_fd], [], [], 0.05)
            if not ready:
                if self.stop.is_set():
                    return
                continue
            chunk = os.read(self.read_fd, 65536)
            if not chunk:
                return
            self.total += len(chunk)
            room = self.cap - len(self.data)
            if room > 0:
                self.data += chunk[:room]

    def __exit__(self, *exc):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        for fd in self.saved:
            os.close(fd)
        self.thread.join(0.2)  # background children may still hold the pipe open
        self.stop.set()
        self.thread.join()
        os.close(self.read_fd)


def _raise_timeout(signum, frame):
    raise CellTimeout()


def run_cell(code, namespace, number, timeout, cap):
    """Execute one cell; return the reply dict. Never raises."""
    filename = f"<cell-{number}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    start = time.monotonic()
    status, value, error = "ok", None, None
    with Capture(cap) as capture:
        try:
            try:
                signal.signal(signal.SIGALRM, _raise_timeout)  # in case a cell replaced it
                signal.setitimer(signal.ITIMER_REAL, timeout, 0.5)
                result = _execute(code, filename, namespace)
                if result is not None:
                    value = repr(result)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except CellTimeout as exc:
            status, error = "timeout", _format_exception(exc, filename)
        except BaseException as exc:  # the agent's exception, SystemExit included
            status, error = "error", _format_exception(exc, filename)
    if value is not None and len(value) > VALUE_CHARS:
        value = f"{value[:VALUE_CHARS]}... [{len(value) - VALUE_CHARS} more characters]"
    return {
        "status": status,
        "output": bytes(capture.data).decode("utf-8", "replace"),
        "output_total": capture.total,
        "value": value,
        "error": error,
        "duration_s": time.monotonic() - start,
    }


def _execute(code, filename, namespace):
    tree = ast.parse(code, filename, "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, filename, "exec"), namespace)
    if last is not None:
        return eval(compile(last, filename, "eval"), namespace)
    return None


def _format_exception(exc, filename):
    """The traceback from the cell's first frame on, without the kernel's own frames."""
    tb = exc.__traceback__
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<cell-"):
        tb = tb.tb_next
    te = traceback.TracebackException(type(exc), exc, tb)
    te.stack = traceback.StackSummary.from_list(
        [f for f in te.stack if f.filename != KERNEL_FILENAME])
    lines = list(te.format())
    if isinstance(exc, CellTimeout):
        lines = lines[:-1] if len(lines) > 1 else []  # "CellTimeout" means nothing to the agent
    return "".join(lines)


def serve(state_dir):
    global ast, io, json, linecache, select, signal, socket, threading, traceback, types
    import ast
    import io
    import json
    import linecache
    import select
    import signal
    import socket
    import threading
    import traceback
    import types

    kernel_globals = globals()
    p = paths(state_dir)
    with open(p["kernel.pid"], "w") as f:
        f.write(str(os.getpid()))
    # prints go straight to whatever fd 1/2 are at the time (the per-cell pipe)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), "utf-8", "backslashreplace",
                                  write_through=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), "utf-8", "backslashreplace",
                                  write_through=True)
    module = types.ModuleType("__main__")
    kernel_globals["_kernel_module"] = sys.modules["__main__"]  # keep our own globals alive
    sys.modules["__main__"] = module
    sys.argv = [""]
    namespace = module.__dict__
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.unlink(p["kernel.sock"])
    except FileNotFoundError:
        pass
    server.bind(p["kernel.sock"])
    server.listen(8)
    number = 0
    while True:
        conn, _ = server.accept()
        try:
            request = json.loads(_recv_line(conn, None))
            number += 1
            reply = run_cell(request["code"], namespace, number, float(request["timeout"]),
                             int(request["output_bytes"]))
            conn.sendall(json.dumps(reply).encode() + b"\n")
        except Exception:  # a bad request or a client that went away: serve the next one
            pass
        finally:
            conn.close()


def _recv_line(conn, deadline):
    data = bytearray()
    while not data.endswith(b"\n"):
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError()
            conn.settimeout(left)
        chunk = conn.recv(65536)
        if not chunk:
            raise EOFError()
        data += chunk
    return data.decode()


# --------------------------------------------------------------------------- client


def _connect(path):
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
        return sock
    except OSError:
        sock.close()
        return None


def _start_kernel(source, state_dir):
    p = paths(state_dir)
    for name in ("kernel.sock", "kernel.pid"):
        try:
            os.unlink(p[name])
        except FileNotFoundError:
            pass
    import subprocess

    with open(p["kernel.log"], "ab") as log:
        subprocess.Popen(
            [sys.executable, "-c", BOOT, source, "serve", state_dir],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        sock = _connect(p["kernel.sock"])
        if sock is not None:
            return sock
        time.sleep(0.005)
    raise RuntimeError(f"the Python kernel did not start within {START_TIMEOUT_S:g} s")


def _kill_kernel(state_dir):
    p = paths(state_dir)
    try:
        with open(p["kernel.pid"]) as f:
            pid = int(f.read())
        os.killpg(pid, SIGKILL)
    except (OSError, ValueError):
        pass
    for name in ("kernel.sock", "kernel.pid", "started"):
        try:
            os.unlink(p[name])
        except FileNotFoundError:
            pass


def client(source, state_dir, timeout):
    """Send the cell on stdin (one JSON line) to the kernel, starting one if needed.

    Prints the kernel's JSON reply line (or one saying it was killed or died),
    then a JSON line saying whether a kernel was started for this call.
    """
    request = sys.stdin.buffer.read().strip() + b"\n"
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    p = paths(state_dir)
    with open(p["lock"], "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one cell at a time, one kernel start at a time
        sock = _connect(p["kernel.sock"])
        kernel = "reused"
        if sock is None:
            kernel = "restarted" if os.path.exists(p["started"]) else "started"
            sock = _start_kernel(source, state_dir)
            open(p["started"], "w").close()
        reply = _ask(sock, request, float(timeout) + KILL_GRACE_S, state_dir)
    sys.stdout.write(reply + f'{{"kernel_start": "{kernel}"}}\n')


def _ask(sock, request, wait_s, state_dir):
    try:
        sock.sendall(request)
        return _recv_line(sock, time.monotonic() + wait_s)
    except (TimeoutError, _socket.timeout):  # noqa: UP041 - not the same class before 3.10
        _kill_kernel(state_dir)
        return '{"status": "timeout", "kernel": "killed"}\n'
    except (EOFError, OSError, ValueError):
        _kill_kernel(state_dir)  # it died mid-cell (os._exit, out of memory): clean up
        return '{"status": "died", "kernel": "died"}\n'
    finally:
        sock.close()


if __name__ == "__main__":
    SOURCE = sys.argv[1]
    if sys.argv[2] == "serve":
        serve(sys.argv[3])
    elif sys.argv[2] == "kill":
        _kill_kernel(sys.argv[3])
    else:
        client(SOURCE, sys.argv[3], sys.argv[4])
