"""Client of the resident driver; what the host runs for each tool call.

``webctl.py start URL [WIDTH HEIGHT [SECONDS]]`` launches :mod:`webdriver` in
its own session (it outlives this command and dies at the sandbox's reset),
waits until its socket accepts, and prints the first observation as a JSON
reply. A start first kills the driver an earlier start left (one the host
gave up on as too slow) and gives Chromium a fresh profile, so it can be
retried; SECONDS (default 30) bounds the whole start. ``webctl.py call JSON``
sends one request and prints the reply. Both print one JSON object and exit
0; a driver that is not running (or died) is reported as ``{"ok": false,
"fatal": true, ...}`` with exit status 3, plus ``"slow": true`` when it ran out
of time rather than failed (a loaded host: worth another try).

Standard library only, and small, so that ``python3 -I -S webctl.py`` starts
in a few milliseconds.
"""

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = "/tmp/toolgym-web"
SOCKET = f"{RUN}/driver.sock"
PROFILES = "/work/.toolgym-web"
PIDFILE = f"{RUN}/driver.pid"
LOG = f"{RUN}/driver.log"


def request(message, timeout=60.0):
    """Send one request to the driver and return its reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(SOCKET)
        conn.sendall(json.dumps(message).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def fatal(error, slow=False):
    print(json.dumps({"ok": False, "fatal": True, "error": error, **({"slow": True} if slow
                                                                      else {})}))
    sys.exit(3)


def stop_earlier():
    """Kill the driver (and its Chromium) an earlier start left; remove its socket and profile."""
    try:
        with open(PIDFILE) as f:
            os.killpg(int(f.read()), signal.SIGKILL)
    except (OSError, ValueError):
        pass
    for leftover in (SOCKET, PIDFILE):
        try:
            os.unlink(leftover)
        except OSError:
            pass
    for profile in glob.glob(f"{PROFILES}/profile-*"):
        shutil.rmtree(profile, ignore_errors=True)


def start(url, width, height, seconds):
    deadline = time.monotonic() + seconds
    stop_earlier()
    os.makedirs(RUN, exist_ok=True)
    with open(LOG, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", f"{HERE}/webdriver.py", "--socket", SOCKET,
             "--profile", f"{PROFILES}/profile-{os.getpid()}", "--url", url,
             "--width", str(width), "--height", str(height), "--seconds", str(seconds)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    with open(PIDFILE, "w") as f:
        f.write(str(proc.pid))
    while not os.path.exists(SOCKET):
        late = time.monotonic() > deadline
        if proc.poll() is not None or late:
            with open(LOG, "rb") as log:
                tail = log.read()[-2000:].decode(errors="replace")
            fatal(f"the browser driver did not start{f' within {seconds:g} s' if late else ''}: "
                  f"{tail}", slow=late or "timed out" in tail)
        time.sleep(0.02)
    return request({"op": "observe"}, timeout=max(1.0, deadline - time.monotonic()))


def main():
    try:
        if sys.argv[1] == "start":
            size = [int(v) for v in sys.argv[3:5]] or [800, 600]
            reply = start(sys.argv[2], *size, float(sys.argv[5]) if len(sys.argv) > 5 else 30.0)
        else:
            reply = request(json.loads(sys.argv[2]))
    except TimeoutError as exc:
        fatal(f"the browser driver did not answer in time: {exc}", slow=True)
    except (OSError, ValueError) as exc:
        fatal(f"the browser driver is not answering: {type(exc).__name__}: {exc}")
    print(json.dumps(reply))


if __name__ == "__main__":
    main()
