"""A real HTTP server on 127.0.0.1 that plays a script of chat-completion answers.

Each POST to ``/v1/chat/completions`` takes the next step of the script: a JSON
answer, an error status, a slow answer, or a dropped connection. Requests are
recorded so tests can check what the agent sent. Runs in a thread; slow steps
wait on an event, so closing the server never waits for a sleeping handler.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """Answer 200 with a chat completion."""

    content: str | None = "ok"
    tool_calls: list[dict[str, Any]] | None = None
    token_ids: list[int] | None = None
    prompt_token_ids: list[int] | None = None
    logprobs: list[float] | None = None
    finish_reason: str = "stop"

    def body(self) -> dict[str, Any]:
        choice: dict[str, Any] = {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": self.content,
                "tool_calls": self.tool_calls,
            },
            "finish_reason": self.finish_reason,
        }
        if self.token_ids is not None:
            choice["token_ids"] = self.token_ids
        if self.logprobs is not None:
            ids = self.token_ids or [0] * len(self.logprobs)
            choice["logprobs"] = {
                "content": [
                    {"token": f"token_id:{i}", "logprob": lp}
                    for i, lp in zip(ids, self.logprobs, strict=False)
                ]
            }
        body = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "choices": [choice],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2},
        }
        if self.prompt_token_ids is not None:
            body["prompt_token_ids"] = self.prompt_token_ids
        return body


@dataclass(frozen=True)
class Status:
    """Answer with an error status (and optional headers such as Retry-After)."""

    code: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Slow:
    """Wait ``seconds`` (interruptible), then play ``then``."""

    seconds: float
    then: Reply | Status = Reply()


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering."""


Step = Reply | Status | Slow | Drop


class ScriptedServer:
    """The server; use :func:`serve`."""

    def __init__(self, script: Sequence[Step]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def next_step(self, body: dict[str, Any], headers: dict[str, str]) -> Step:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            if not self.script:
                return Status(599)
            return self.script.pop(0)


def _handler(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            step = server.next_step(body, dict(self.headers))
            if isinstance(step, Slow):
                if server.stop.wait(step.seconds):
                    return
                step = step.then
            try:
                self._play(step)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (read timeout); that is the point of the test

        def _play(self, step: Step) -> None:
            if isinstance(step, Drop):
                self.close_connection = True
                return
            if isinstance(step, Status):
                payload = json.dumps({"error": {"message": f"scripted {step.code}"}}).encode()
                self.send_response(step.code)
                for key, value in step.headers.items():
                    self.send_header(key, value)
            else:
                payload = json.dumps(step.body()).encode()
                self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


@contextmanager
def serve(script: Sequence[Step]) -> Iterator[ScriptedServer]:
    """Run a :class:`ScriptedServer` for the ``with`` block."""
    server = ScriptedServer(script)
    thread = threading.Thread(
        target=server.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(timeout=5)
