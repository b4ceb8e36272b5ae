"""The resident browser driver of toolgym/Web-v0: one per episode, inside the sandbox.

``webctl.py start`` launches it once per episode (Chromium takes about a
second to start, so it is not started per tool call). It owns one headless
Chromium, reached through :mod:`cdp`, and serves one request at a time on a
unix socket: one JSON line in, one JSON line out.

Requests (``op``): ``observe``; ``click`` (``id``); ``type`` (``id``,
``text``); ``press`` (``key``); ``scroll`` (``direction``); ``goto``
(``path``); ``screenshot``; ``result``. Every action replies with the new
observation, and an action the page refuses replies ``ok: false`` with an
``error`` the agent reads. The agent never sends JavaScript: actions are real
mouse and keyboard input, and ``goto`` only opens this task's own pages (the
path must name a page file, the task's query string is appended by the
driver), so no ``file:``, ``javascript:`` or outside URL can be opened.
"""

import argparse
import json
import os
import re
import socket
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cdp import CDPError, launch  # noqa: E402

PAGES = "/opt/toolgym-web/pages"
LIB = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "page.js")).read()
MAX_TEXT = 1000
PAGE_PATH = re.compile(r"^/?([a-z0-9][a-z0-9-]*\.html)(#[A-Za-z0-9_-]*)?$")
RAF = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(1))))"
RESULT = ("(() => ({href: location.href, result: typeof window.__toolgym_result === 'function'"
          " ? window.__toolgym_result() : null}))()")
LOADING = {"Page.frameStartedLoading", "Page.frameRequestedNavigation"}
LOADED = {"Page.loadEventFired", "Page.frameStoppedLoading"}

_NAMED = {  # key: (key, code, windowsVirtualKeyCode, text)
    "enter": ("Enter", "Enter", 13, "\r"), "return": ("Enter", "Enter", 13, "\r"),
    "tab": ("Tab", "Tab", 9, None), "escape": ("Escape", "Escape", 27, None),
    "esc": ("Escape", "Escape", 27, None), "backspace": ("Backspace", "Backspace", 8, None),
    "delete": ("Delete", "Delete", 46, None), "space": (" ", "Space", 32, " "),
    "arrowup": ("ArrowUp", "ArrowUp", 38, None), "arrowdown": ("ArrowDown", "ArrowDown", 40, None),
    "arrowleft": ("ArrowLeft", "ArrowLeft", 37, None),
    "arrowright": ("ArrowRight", "ArrowRight", 39, None),
    "up": ("ArrowUp", "ArrowUp", 38, None), "down": ("ArrowDown", "ArrowDown", 40, None),
    "left": ("ArrowLeft", "ArrowLeft", 37, None), "right": ("ArrowRight", "ArrowRight", 39, None),
    "home": ("Home", "Home", 36, None), "end": ("End", "End", 35, None),
    "pageup": ("PageUp", "PageUp", 33, None), "pagedown": ("PageDown", "PageDown", 34, None),
}
KEY_NAMES = "Enter, Tab, Escape, Backspace, Delete, Space, ArrowUp/Down/Left/Right, Home, End, " \
            "PageUp, PageDown, or one character"


class Refused(Exception):
    """The page refused an action; the message is the agent's observation."""


def key_event(name):
    """The CDP key fields of a key name, or :class:`Refused`."""
    if len(name) == 1 and name.isprintable():
        upper = name.upper()
        code = f"Key{upper}" if upper.isalpha() and upper.isascii() else (
            f"Digit{name}" if name.isdigit() else "")
        vk = ord(upper) if upper.isascii() and upper.isalnum() else 0
        return name, code, vk, name
    found = _NAMED.get(name.strip().lower().replace(" ", ""))
    if found is None:
        raise Refused(f'Unknown key "{name[:30]}"; use {KEY_NAMES}.')
    return found


class Browser:
    """One Chromium page, its task's query string, and the actions on it."""

    def __init__(self, profile, width, height, url, seconds=30.0):
        """Launch Chromium and open ``url``; every step of it within ``seconds`` in all (a
        loaded host starts Chromium slowly: the host scales ``seconds`` when it retries)."""
        deadline = time.monotonic() + seconds
        self.cdp = launch(profile, width, height)
        parts = urllib.parse.urlsplit(url)
        self.query = parts.query
        target = {"targetId": self._page_target(deadline), "flatten": True}
        self.session = self.cdp.send("Target.attachToTarget", target,
                                     timeout=_left(deadline))["sessionId"]
        self.send("Page.enable", timeout=_left(deadline))
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                  timeout=_left(deadline))
        self.navigate(url, deadline)

    def send(self, method, params=None, timeout=10.0):
        return self.cdp.send(method, params, self.session, timeout)

    def _page_target(self, deadline):
        while True:
            pages = [t for t in self.cdp.send("Target.getTargets",
                                              timeout=_left(deadline))["targetInfos"]
                     if t["type"] == "page"]
            if pages:
                return pages[0]["targetId"]
            if time.monotonic() > deadline:
                raise CDPError("Chromium opened no page in time: timed out")
            time.sleep(0.05)

    def evaluate(self, expression, await_promise=False):
        reply = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                               "awaitPromise": await_promise})
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text", "")
            raise CDPError(f"page script failed: {text[:300]}")
        return reply["result"].get("value")

    def lib(self, fn, *args):
        """Call a function of page.js (defined once per document) with JSON arguments."""
        result = self.evaluate(f"{LIB}\n;window.__tgd.{fn}({', '.join(map(json.dumps, args))})")
        if isinstance(result, dict) and result.get("error"):
            raise Refused(result["error"])
        return result

    # ------------------------------------------------------------ waiting
    def settle(self, since):
        """Wait until what the last input started is done: a navigation, then two frames."""
        try:
            self.evaluate(RAF, await_promise=True)
        except CDPError:
            pass  # the document was replaced mid-wait: wait for the new one below
        events = self.cdp.events
        started = [i for i in range(since, len(events)) if events[i]["method"] in LOADING]
        if started:
            self.cdp.wait_event(started[-1], LOADED, timeout=10.0)
            self.evaluate(RAF, await_promise=True)

    def navigate(self, url, deadline=None):
        """Open ``url`` and wait for it (within ``deadline``, else the usual 15 + 10 s)."""
        since = self.cdp.mark()
        reply = self.send("Page.navigate", {"url": url},
                          timeout=15.0 if deadline is None else _left(deadline))
        if reply.get("errorText"):
            raise Refused(f"Cannot open the page: {reply['errorText']}")
        if reply.get("loaderId"):
            self.cdp.wait_event(since, {"Page.loadEventFired"},
                                timeout=10.0 if deadline is None else _left(deadline))
        self.settle(since)

    # ------------------------------------------------------------ actions
    def observe(self):
        return self.lib("snapshot")

    def click(self, element_id):
        spot = self.lib("locate", element_id)
        since = self.cdp.mark()
        x, y = spot["x"], spot["y"]
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent",
                      {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})
        self.settle(since)

    def type(self, element_id, text):
        if len(text) > MAX_TEXT:
            raise Refused(f"The text is too long ({len(text)} characters; at most {MAX_TEXT}).")
        since = self.cdp.mark()
        if self.lib("prepareType", element_id, text).get("typed"):
            self.send("Input.insertText", {"text": text})
        self.settle(since)

    def press(self, name):
        key, code, vk, text = key_event(name)
        since = self.cdp.mark()
        down = {"type": "keyDown" if text else "rawKeyDown", "key": key, "code": code,
                "windowsVirtualKeyCode": vk, "nativeVirtualKeyCode": vk}
        if text:
            down.update(text=text, unmodifiedText=text)
        self.send("Input.dispatchKeyEvent", down)
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": code,
                                             "windowsVirtualKeyCode": vk,
                                             "nativeVirtualKeyCode": vk})
        self.settle(since)

    def scroll(self, direction):
        since = self.cdp.mark()
        self.lib("scroll", direction.strip().lower())
        self.settle(since)

    def goto(self, path):
        match = PAGE_PATH.match(path.strip())
        if not match or not os.path.isfile(os.path.join(PAGES, match.group(1))):
            pages = sorted(p for p in os.listdir(PAGES) if p.endswith(".html"))
            raise Refused(f'goto opens only this site\'s pages, e.g. "/{pages[0]}" '
                          f"(optionally with a #section); \"{path[:60]}\" is not one.")
        self.navigate(f"file://{PAGES}/{match.group(1)}?{self.query}{match.group(2) or ''}")

    def screenshot(self):
        return self.send("Page.captureScreenshot", {"format": "png"})["data"]

    def result(self):
        return self.evaluate(RESULT)


def handle(browser, req):
    """Serve one request; a refused action is an ``ok: false`` reply with the observation."""
    op = req.get("op")
    try:
        if op == "screenshot":
            return {"ok": True, "png": browser.screenshot()}
        if op == "result":
            return {"ok": True, **browser.result()}
        if op == "click":
            browser.click(_int(req.get("id")))
        elif op == "type":
            browser.type(_int(req.get("id")), _str(req.get("text"), "text"))
        elif op == "press":
            browser.press(_str(req.get("key"), "key"))
        elif op == "scroll":
            browser.scroll(_str(req.get("direction"), "direction"))
        elif op == "goto":
            browser.goto(_str(req.get("path"), "path"))
        elif op != "observe":
            return {"ok": False, "error": f"unknown op {op!r}"}
        return {"ok": True, "obs": browser.observe()}
    except Refused as exc:
        return {"ok": False, "error": str(exc), "obs": browser.observe()}


def _left(deadline):
    """Seconds until ``deadline``, at least a tenth (so the timeout, not a zero wait, fires)."""
    return max(0.1, deadline - time.monotonic())


def _int(value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise Refused(f"An element id is a number from the observation, not {value!r:.40}.")
    return value


def _str(value, what):
    if not isinstance(value, str):
        raise Refused(f"{what} must be a string.")
    return value


def serve(browser, path):
    """Answer requests on a unix socket at ``path`` until the browser exits."""
    tmp = f"{path}.{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(tmp)
    server.listen(8)
    os.rename(tmp, path)  # the socket appears only once it accepts: readiness for webctl
    while browser.cdp.proc.poll() is None:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(60)
            data = b""
            while not data.endswith(b"\n") and len(data) < (4 << 20):
                chunk = conn.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
            try:
                reply = handle(browser, json.loads(data))
            except (CDPError, ValueError, KeyError, TypeError) as exc:
                reply = {"ok": False, "fatal": True, "error": f"{type(exc).__name__}: {exc}"}
            try:
                conn.sendall(json.dumps(reply).encode() + b"\n")
            except OSError:
                pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--width", type=int, default=800)
    parser.add_argument("--height", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    browser = Browser(args.profile, args.width, args.height, args.url, args.seconds)
    serve(browser, args.socket)


if __name__ == "__main__":
    main()
