"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``.

Chromium reads commands from its fd 3 and writes replies and events to its
fd 4, one JSON message per NUL-terminated frame. A pipe needs no port, no
websocket library and no network namespace, so the driver uses the
standard library only. One reader thread files replies by id and keeps
events in a list that callers wait on.
"""

import fcntl
import json
import os
import subprocess
import threading
import time

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
    "--no-default-browser-check", "--disable-breakpad", "--font-render-hinting=none",
    "--force-device-scale-factor=1", "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--remote-debugging-pipe",
]
"""Flags that work in toolgym's sandbox (no network, no GPU, read-only root)."""


class CDPError(RuntimeError):
    """A CDP command failed, timed out, or the browser went away."""


class CDP:
    """Send commands to a Chromium started with ``--remote-debugging-pipe``; collect events."""

    def __init__(self, proc, to_browser, from_browser):
        self.proc = proc
        self._out = os.fdopen(to_browser, "wb", buffering=0)
        self._in = os.fdopen(from_browser, "rb", buffering=0)
        self._next = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._replies = {}
        self.events = []
        """Every event, in order (a driver lives one episode, so this stays small)."""
        self.closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        while True:
            chunk = self._in.read(1 << 16)
            if not chunk:
                break
            buf += chunk
            *frames, buf = buf.split(b"\0")
            with self._cond:
                for frame in frames:
                    msg = json.loads(frame)
                    if "id" in msg:
                        self._replies[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                self._cond.notify_all()
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def send(self, method, params=None, session=None, timeout=10.0):
        """Run one command and return its result; raise :class:`CDPError` on failure."""
        with self._lock:
            self._next += 1
            msg_id = self._next
            msg = {"id": msg_id, "method": method, "params": params or {}}
            if session:
                msg["sessionId"] = session
            try:
                self._out.write(json.dumps(msg).encode() + b"\0")
            except OSError as exc:
                raise CDPError(f"browser pipe closed: {exc}") from None
        deadline = time.monotonic() + timeout
        with self._cond:
            while msg_id not in self._replies:
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    raise CDPError(f"{method}: {'browser exited' if self.closed else 'timed out'}")
                self._cond.wait(left)
            reply = self._replies.pop(msg_id)
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def mark(self):
        """A position in the event list; :meth:`wait_event` looks only after it."""
        with self._cond:
            return len(self.events)

    def seen(self, since, methods):
        """Whether an event of ``methods`` arrived after ``since``."""
        with self._cond:
            return any(e["method"] in methods for e in self.events[since:])

    def wait_event(self, since, methods, timeout):
        """Wait until an event of ``methods`` arrives after ``since``; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(e["method"] in methods for e in self.events[since:]):
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    return False
                self._cond.wait(left)
        return True


def launch(profile_dir, width, height, chromium="/usr/bin/chromium"):
    """Start Chromium with a fresh profile and return a :class:`CDP` client to it.

    The pipes are moved to fds 3 and 4 of the browser by the bash that execs
    it, so no ``preexec_fn`` runs in this threaded process.
    """
    os.makedirs(profile_dir, exist_ok=True)
    cmd_r, cmd_w = os.pipe()
    res_r, res_w = os.pipe()
    # Above fd 4, so that moving them onto 3 and 4 cannot clobber one another.
    cmd_r, res_w = (_above(fd, 10) for fd in (cmd_r, res_w))
    argv = [chromium, *FLAGS, f"--user-data-dir={profile_dir}", f"--window-size={width},{height}",
            "about:blank"]
    script = f'exec 3<&{cmd_r} 4>&{res_w} {cmd_r}<&- {res_w}>&-; exec "$@"'
    proc = subprocess.Popen(["/bin/bash", "-c", script, "bash", *argv], pass_fds=(cmd_r, res_w),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(profile_dir, "chromium.log"), "wb"))
    os.close(cmd_r)
    os.close(res_w)
    return CDP(proc, cmd_w, res_r)


def _above(fd, low):
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, low)
    os.close(fd)
    return high
