"""Any OpenAI-compatible ``/v1/chat/completions`` endpoint as an agent (a vLLM server is one).

For evaluation any endpoint will do. For training the turn must carry the
exact ids the server sampled and their log-probs: vLLM (>= 0.10.2) returns them
when asked with the extra body fields ``return_token_ids`` (sampled ids in
``choices[0].token_ids``, prompt ids in ``prompt_token_ids``) and
``return_tokens_as_token_ids`` with ``logprobs`` (log-prob tokens then read
``"token_id:123"``). A turn without ids is returned with ``token_ids=None``:
usable for evaluation, not trainable. Servers that reject unknown fields (the
OpenAI API) need ``request_token_ids=False``.

A chat endpoint renders the messages itself, so ``Conversation.prompt_token_ids``
cannot be passed in; the ``prompt_token_ids`` vLLM returns say what it rendered.
Train on such turns one sample per turn (server prompt ids + sampled ids), or
check with ``toolgym check-template`` that the server's rendering is append-only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from toolgym.agents.base import (
    DEFAULT_SAMPLING,
    AgentBase,
    AgentTurn,
    Conversation,
    Message,
    SamplingParams,
)
from toolgym.agents.retry import (
    ATTEMPTS,
    DEFAULT_RETRY,
    RETRYABLE_ERRORS,
    HTTPStats,
    RetryPolicy,
    RetryTransport,
)
from toolgym.errors import AgentHTTPError, AgentTimeout

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
DEFAULT_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64)
_TOKEN_ID_PREFIX = "token_id:"


class OpenAIAgent(AgentBase):
    """Agent that asks an OpenAI-compatible server for each turn.

    Args:
        base_url: Server root, with or without the trailing ``/v1``.
        model: Model name the server serves.
        api_key: Sent as a bearer token when given.
        sampling: Temperature, top-p and the per-turn token budget (``max_tokens``).
        timeout: Per-attempt timeouts.
        retry: Retry policy for 429/5xx/connection errors/timeouts.
        limits: Connection pool limits (many episodes share one agent).
        request_token_ids: Ask for vLLM's token ids and logprobs (see module docstring).
        extra_body: Extra JSON fields merged into every request (e.g. ``top_k``).
        transport: Transport that does the I/O, wrapped by the retry transport
            (tests may pass ``httpx.MockTransport``).

    Example:
        >>> agent = OpenAIAgent("http://127.0.0.1:8000", "Qwen/Qwen2.5-0.5B-Instruct")
        >>> agent.url
        'http://127.0.0.1:8000/v1/chat/completions'
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        sampling: SamplingParams = DEFAULT_SAMPLING,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        limits: httpx.Limits = DEFAULT_LIMITS,
        request_token_ids: bool = True,
        extra_body: Mapping[str, Any] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        root = base_url.rstrip("/")
        self.url = (root if root.endswith("/v1") else root + "/v1") + "/chat/completions"
        self.model = model
        self.sampling = sampling
        self.timeout = timeout
        self.request_token_ids = request_token_ids
        self.extra_body = dict(extra_body or {})
        self.stats = HTTPStats()
        self.policy_version: int | None = None
        """Set by the trainer after each weight sync to the server; stamped on every turn."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._transport = RetryTransport(
            transport or httpx.AsyncHTTPTransport(limits=limits), retry, self.stats
        )
        self._client: httpx.AsyncClient | None = None
        self._headers = headers
        self._closed = False

    async def act(self, conversation: Conversation) -> AgentTurn:
        """Request one completion; raises AgentTimeout / AgentHTTPError once retries are spent."""
        start = time.perf_counter()
        data, attempts = await self._post(self.request_body(conversation))
        turn = parse_chat_completion(data)
        info = {**turn.info, "attempts": attempts}
        return AgentTurn(
            text=turn.text,
            token_ids=turn.token_ids,
            logprobs=turn.logprobs,
            finish_reason=turn.finish_reason,
            tool_calls=turn.tool_calls,
            prompt_token_ids=turn.prompt_token_ids,
            usage=turn.usage,
            latency_s=time.perf_counter() - start,
            policy_version=self.policy_version,
            info=info,
        )

    def request_body(self, conversation: Conversation) -> dict[str, Any]:
        """The JSON body sent for ``conversation``."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": wire_messages(conversation.messages),
            "temperature": self.sampling.temperature,
            "top_p": self.sampling.top_p,
            "max_tokens": self.sampling.max_new_tokens,
        }
        if conversation.tools:
            body["tools"] = list(conversation.tools)
        if self.request_token_ids:
            body.update(logprobs=True, return_token_ids=True, return_tokens_as_token_ids=True)
        body.update(self.extra_body)
        return body

    async def aclose(self) -> None:
        """Close the connection pool; a second call does nothing."""
        self._closed = True
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _post(self, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """POST ``body``; returns the JSON answer and the attempts it took."""
        max_attempts = self._transport.policy.max_retries + 1
        try:
            response = await self._get_client().post(self.url, json=body)
        except httpx.TimeoutException as exc:
            self.stats.failed += 1
            raise self._timeout_error(exc, max_attempts) from exc
        except httpx.TransportError as exc:
            self.stats.failed += 1
            attempts = max_attempts if isinstance(exc, RETRYABLE_ERRORS) else 1
            raise _http_error(self.url, None, f"{type(exc).__name__}: {exc}", attempts) from exc
        attempts = int(response.extensions.get(ATTEMPTS, 1))
        if response.status_code >= 400:
            self.stats.failed += 1
            raise _http_error(self.url, response.status_code, response.text[:500], attempts)
        try:
            return response.json(), attempts
        except json.JSONDecodeError as exc:
            self.stats.failed += 1
            raise _http_error(
                self.url, response.status_code, "answer is not JSON", attempts
            ) from exc

    def _get_client(self) -> httpx.AsyncClient:
        """The client, opened on first use (so constructing an agent needs no event loop)."""
        if self._closed:
            raise RuntimeError("This OpenAIAgent is closed; create a new one.")
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport, timeout=self.timeout, headers=self._headers
            )
        return self._client

    def _timeout_error(self, exc: httpx.TimeoutException, attempts: int) -> AgentTimeout:
        err = AgentTimeout(
            f"{self.url} did not answer in time ({type(exc).__name__}, timeout {self.timeout}) "
            f"after {attempts} attempts. Raise the agent's timeout, "
            "lower the number of concurrent episodes, or check the server."
        )
        err.url, err.timeout, err.attempts = self.url, self.timeout, attempts  # type: ignore[attr-defined]
        return err


def parse_chat_completion(data: Mapping[str, Any]) -> AgentTurn:
    """Turn a chat-completion response into an :class:`AgentTurn` (ids when the server sent them).

    Example:
        >>> data = {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop",
        ...   "token_ids": [7, 2], "logprobs": {"content": [
        ...     {"token": "token_id:7", "logprob": -0.5},
        ...     {"token": "token_id:2", "logprob": -0.1}]}}],
        ...   "prompt_token_ids": [1, 5]}
        >>> t = parse_chat_completion(data)
        >>> t.token_ids, t.logprobs, t.prompt_token_ids
        ([7, 2], [-0.5, -0.1], [1, 5])
    """
    choice = data["choices"][0]
    message = choice.get("message") or {}
    token_ids, logprobs, note = _tokens(choice)
    info: dict[str, Any] = {"id": data.get("id")}
    if note:
        info["logprobs_dropped"] = note
    if message.get("reasoning_content"):
        info["reasoning"] = message["reasoning_content"]
    prompt_ids = data.get("prompt_token_ids") or choice.get("prompt_token_ids")
    return AgentTurn(
        text=message.get("content") or "",
        token_ids=token_ids,
        logprobs=logprobs,
        finish_reason=choice.get("finish_reason") or "stop",
        tool_calls=message.get("tool_calls") or None,
        prompt_token_ids=list(prompt_ids) if prompt_ids else None,
        usage=data.get("usage"),
        info=info,
    )


def _tokens(choice: Mapping[str, Any]) -> tuple[list[int] | None, list[float] | None, str | None]:
    """Sampled ids and their logprobs; logprobs that do not line up are dropped, with a reason."""
    content = (choice.get("logprobs") or {}).get("content") or []
    logprobs = [float(c["logprob"]) for c in content] or None
    from_logprobs = _ids_from_logprob_tokens(content)
    token_ids = choice.get("token_ids")
    token_ids = list(token_ids) if token_ids is not None else from_logprobs
    if token_ids is None or logprobs is None:
        return token_ids, None, None
    if len(logprobs) != len(token_ids):
        return token_ids, None, f"{len(logprobs)} logprobs for {len(token_ids)} tokens"
    if from_logprobs is not None and from_logprobs != token_ids:
        return token_ids, None, "logprob tokens differ from token_ids"
    return token_ids, logprobs, None


def _ids_from_logprob_tokens(content: Sequence[Mapping[str, Any]]) -> list[int] | None:
    tokens = [str(c.get("token", "")) for c in content]
    if not tokens or not all(t.startswith(_TOKEN_ID_PREFIX) for t in tokens):
        return None
    return [int(t[len(_TOKEN_ID_PREFIX) :]) for t in tokens]


def wire_messages(messages: Sequence[Message]) -> list[Message]:
    """Messages as the OpenAI wire format wants them: tool-call arguments as JSON strings."""
    out = []
    for msg in messages:
        calls = msg.get("tool_calls")
        if calls:
            msg = {**msg, "tool_calls": [_wire_call(c) for c in calls]}
        out.append(msg)
    return out


def _wire_call(call: Mapping[str, Any]) -> dict[str, Any]:
    fn = dict(call.get("function") or {})
    if not isinstance(fn.get("arguments", ""), str):
        fn["arguments"] = json.dumps(fn["arguments"])
    return {"type": "function", **call, "function": fn}


def _http_error(url: str, status: int | None, detail: str, attempts: int) -> AgentHTTPError:
    what = f"HTTP {status}" if status is not None else "connection failure"
    hint = (
        "The request itself was rejected: check the model name, the messages and max_tokens."
        if status is not None and status < 500 and status not in (408, 425, 429)
        else "Retries are exhausted: check that the server is up and not overloaded."
    )
    err = AgentHTTPError(f"{url}: {what} after {attempts} attempt(s): {detail}. {hint}")
    err.url, err.status_code, err.detail, err.attempts = url, status, detail, attempts  # type: ignore[attr-defined]
    return err
