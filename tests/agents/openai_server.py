"""A real HTTP server on 127.0.0.1 that plays a script of chat-completion answers.

Each POST to ``/v1/chat/completions`` takes the next step of the script: a JSON
answer, an error status, a slow answer, or a dropped connection; or, when the
script is a function, the step it returns for the request body (a policy that
answers from the conversation, or a :class:`Relay` of a real server's answer).
Requests are recorded so tests can check what the agent sent. Runs in a thread;
slow steps wait on an event, so closing the server never waits for a sleeping
handler.

The server is *strict* by default: a request the OpenAI API would refuse (see
:func:`openai_protocol_errors`) is answered 400 with the API's kind of message
and recorded in ``rejected``, so a protocol mistake fails a test loudly instead
of being tolerated by a lenient stand-in.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
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
    reasoning: str | None = None
    """Sent as ``reasoning_content`` (vLLM's reasoning parser, DeepSeek's API)."""

    def body(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": self.content,
            "tool_calls": self.tool_calls,
        }
        if self.reasoning is not None:
            message["reasoning_content"] = self.reasoning
        choice: dict[str, Any] = {
            "index": 0,
            "message": message,
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


@dataclass(frozen=True)
class Reject:
    """Answer 400 with an API error message (what a strict server does with a bad request)."""

    message: str


@dataclass(frozen=True)
class Relay:
    """Answer 200 with ``data`` as is: a real server's answer, relayed by a policy."""

    data: dict[str, Any]


Step = Reply | Status | Slow | Drop | Reject | Relay
Policy = Callable[[dict[str, Any]], Step]
"""Answers a request body with a step (a scripted model that reads the conversation)."""
Check = Callable[[dict[str, Any], Mapping[str, str]], list[str]]
"""What a strict server finds wrong with a request (body, headers): empty when nothing."""

VLLM_EXTRAS = frozenset({"return_token_ids", "return_tokens_as_token_ids", "top_k"})
"""Request fields vLLM accepts beyond the OpenAI API's."""
OPENAI_FIELDS = frozenset({
    "model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens",
    "tools", "tool_choice", "parallel_tool_calls", "logprobs", "top_logprobs", "stop", "seed",
    "n", "stream", "presence_penalty", "frequency_penalty", "user", "response_format",
})
ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


def openai_protocol_errors(body: dict[str, Any], extras: frozenset[str] = VLLM_EXTRAS,
                           ) -> list[str]:
    """What the OpenAI chat-completions API refuses in ``body``, in its own words.

    Unknown request fields (beyond ``extras``); unknown roles; a user/system
    message without string content; an assistant message with null content
    and no ``tool_calls``; a tool call without an id, ``type: "function"``, a
    name, or arguments as a JSON string; a ``tool`` message that answers no
    call of the assistant message before it (or answers one twice); an
    assistant's tool calls left unanswered; ``tool_choice`` naming no offered
    tool; a non-boolean ``parallel_tool_calls``.
    """
    errors = [f"Unrecognized request argument supplied: {k}"
              for k in sorted(set(body) - OPENAI_FIELDS - extras)]
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*errors, "'messages' must be a non-empty array"]
    pending: list[str] = []
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        role = msg.get("role") if isinstance(msg, dict) else None
        if role not in ROLES:
            errors.append(f"Invalid value for '{where}.role': {role!r}")
            continue
        if role != "tool" and pending:
            errors.append(_unanswered(pending))
            pending = []
        content = msg.get("content")
        if role == "assistant":
            calls = msg.get("tool_calls")
            if content is None and not calls:
                errors.append(f"Invalid '{where}': an assistant message needs 'content' or "
                              "'tool_calls'")
            if calls is not None and (not isinstance(calls, list) or not calls):
                errors.append(f"Invalid '{where}.tool_calls': expected a non-empty array")
                continue
            for j, call in enumerate(calls or []):
                errors += _call_errors(call, f"{where}.tool_calls[{j}]")
            pending = [c.get("id") for c in calls or [] if isinstance(c, dict)]
        elif role == "tool":
            call_id = msg.get("tool_call_id")
            if call_id not in pending:
                errors.append(f"Invalid parameter: messages with role 'tool' must be a response "
                              f"to a preceding message with 'tool_calls' ({where}: "
                              f"tool_call_id {call_id!r})")
            else:
                pending.remove(call_id)
            if not isinstance(content, str):
                errors.append(f"Invalid type for '{where}.content': expected a string")
        elif not isinstance(content, str | list):
            errors.append(f"Invalid type for '{where}.content': expected a string")
    if pending:
        errors.append(_unanswered(pending))
    return errors + _tool_option_errors(body)


def _unanswered(ids: list[str]) -> str:
    return ("An assistant message with 'tool_calls' must be followed by tool messages "
            f"responding to each 'tool_call_id'. The following tool_call_ids did not have "
            f"response messages: {', '.join(map(str, ids))}")


def _call_errors(call: Any, where: str) -> list[str]:
    if not isinstance(call, dict):
        return [f"Invalid type for '{where}': expected an object"]
    fn = call.get("function")
    errors = []
    if not isinstance(call.get("id"), str) or not call["id"]:
        errors.append(f"Missing required parameter: '{where}.id'")
    if call.get("type") != "function":
        errors.append(f"Invalid value for '{where}.type': expected 'function'")
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        errors.append(f"Missing required parameter: '{where}.function.name'")
    elif not isinstance(fn.get("arguments"), str):
        errors.append(f"Invalid type for '{where}.function.arguments': expected a string")
    return errors


def _tool_option_errors(body: dict[str, Any]) -> list[str]:
    names = {t.get("function", {}).get("name") for t in body.get("tools") or []}
    choice = body.get("tool_choice")
    errors = []
    if choice is not None:
        named = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
        if choice not in ("auto", "none", "required") and named not in names:
            errors.append(f"Invalid value for 'tool_choice': {choice!r}")
        if not body.get("tools"):
            errors.append("'tool_choice' is only allowed when 'tools' are specified")
    if "parallel_tool_calls" in body and not isinstance(body["parallel_tool_calls"], bool):
        errors.append("Invalid type for 'parallel_tool_calls': expected a boolean")
    return errors


class ScriptedServer:
    """The server; use :func:`serve`."""

    def __init__(self, script: Sequence[Step] | Policy, *, strict: bool = True,
                 check: Check | None = None, path: str = "/v1/chat/completions",
                 render: Callable[[Reply], dict[str, Any]] | None = None) -> None:
        self.script = script if callable(script) else list(script)
        self.check = check or (lambda body, _headers: openai_protocol_errors(body))
        self.strict = strict
        self.path = path
        self.render = render or Reply.body
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.rejected: list[list[str]] = []
        """The protocol errors of each request the strict check refused."""
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
            errors = self.check(body, headers) if self.strict else []
            if errors:
                self.rejected.append(errors)
                return Reject("; ".join(errors))
            if callable(self.script):
                return self.script(body)
            if not self.script:
                return Status(599)
            return self.script.pop(0)


def _handler(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path != server.path:
                self._play(Status(404))
                return
            step = server.next_step(body, {k.lower(): v for k, v in self.headers.items()})
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
            elif isinstance(step, Reject):
                error = {"message": step.message, "type": "invalid_request_error"}
                payload = json.dumps({"type": "error", "error": error}).encode()
                self.send_response(400)
            elif isinstance(step, Relay):
                payload = json.dumps(step.data).encode()
                self.send_response(200)
            else:
                payload = json.dumps(server.render(step)).encode()
                self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


@contextmanager
def serve(script: Sequence[Step] | Policy, **kwargs: Any) -> Iterator[ScriptedServer]:
    """Run a :class:`ScriptedServer` for the ``with`` block (kwargs: see the class)."""
    server = ScriptedServer(script, **kwargs)
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
