"""Client of the resident driver; what the host runs for each tool call.

``webctl.py start URL [WIDTH HEIGHT]`` launches :mod:`webdriver` in its own
session (it outlives this command and dies at the sandbox's reset), waits
until its socket accepts, and prints the first observation as a JSON reply.
``webctl.py call JSON`` sends one request and prints the reply. Both print
one JSON object and exit 0; a driver that is not running (or died) is
reported as ``{"ok": false, "fatal": true, ...}`` with exit status 3.

Standard library only, and small, so that ``python3 -I -S webctl.py`` starts
in a few milliseconds.
"""

import json
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = "/tmp/toolgym-web"
SOCKET = f"{RUN}/driver.sock"
PROFILE = "/work/.toolgym-web/profile"
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


def fatal(error):
    print(json.dumps({"ok": False, "fatal": True, "error": error}))
    sys.exit(3)


def start(url, width, height):
    os.makedirs(RUN, exist_ok=True)
    with open(LOG, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", f"{HERE}/webdriver.py", "--socket", SOCKET,
             "--profile", PROFILE, "--url", url, "--width", str(width), "--height", str(height)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    deadline = time.monotonic() + 30
    while not os.path.exists(SOCKET):
        if proc.poll() is not None or time.monotonic() > deadline:
            with open(LOG, "rb") as log:
                tail = log.read()[-2000:].decode(errors="replace")
            fatal(f"the browser driver did not start: {tail}")
        time.sleep(0.02)
    return request({"op": "observe"})


def main():
    try:
        if sys.argv[1] == "start":
            size = [int(v) for v in sys.argv[3:5]] or [800, 600]
            reply = start(sys.argv[2], *size)
        else:
            reply = request(json.loads(sys.argv[2]))
    except (OSError, ValueError) as exc:
        fatal(f"the browser driver is not answering: {type(exc).__name__}: {exc}")
    print(json.dumps(reply))


if __name__ == "__main__":
    main()
