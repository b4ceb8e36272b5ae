"""What every HTTP model API agent shares: one pooled client, retries, typed errors.

:class:`HTTPAgent` posts a JSON body through :class:`~toolgym.agents.retry.RetryTransport`
and turns what cannot be retried into :class:`~toolgym.errors.AgentTimeout` or
:class:`~toolgym.errors.AgentHTTPError`. Its :meth:`~HTTPAgent.act` is the
whole turn; the OpenAI-compatible and Anthropic agents differ only in the body
they build (:meth:`~HTTPAgent.request_body`) and the answer they read
(:meth:`~HTTPAgent.parse_answer`).

Credentials go into the client's headers only: they are never part of a
turn, an error message or a log line.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from toolgym.agents.base import AgentBase, AgentTurn, Conversation
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


class HTTPAgent(AgentBase):
    """Base of the HTTP agents: POST JSON to ``url`` with retries; subclasses build and read.

    A subclass implements :meth:`request_body` and :meth:`parse_answer` and
    names what a well-formed answer is in :attr:`answer_kind`.

    Args:
        url: The endpoint every request goes to.
        headers: Sent with every request (credentials included).
        timeout: Per-attempt timeouts.
        retry: Retry policy for 429/5xx/connection errors/timeouts.
        limits: Connection pool limits (many episodes share one agent).
        transport: Transport that does the I/O, wrapped by the retry transport.
    """

    answer_kind: ClassVar[str] = "an answer"
    """What a well-formed answer is, for the error that a malformed one raises."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        limits: httpx.Limits = DEFAULT_LIMITS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.stats = HTTPStats()
        self.policy_version: int | None = None
        """Set by the trainer after each weight sync to the server; stamped on every turn."""
        self._transport = RetryTransport(
            transport or httpx.AsyncHTTPTransport(limits=limits), retry, self.stats
        )
        self._headers = dict(headers or {})
        self._client: httpx.AsyncClient | None = None
        self._closed = False

    async def aclose(self) -> None:
        """Close the connection pool; a second call does nothing."""
        self._closed = True
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def act(self, conversation: Conversation) -> AgentTurn:
        """Request one turn; raises AgentTimeout / AgentHTTPError once retries are spent.

        An answer :meth:`parse_answer` cannot read (a missing field, a wrong
        type) is an :class:`AgentHTTPError` with status 200, never retried.
        """
        start = time.perf_counter()
        data, attempts = await self._post(self.request_body(conversation))
        try:
            turn = self.parse_answer(data)
        except (LookupError, TypeError, ValueError) as exc:
            self.stats.failed += 1
            raise http_error(self.url, 200, f"not {self.answer_kind} ({exc!r})", attempts) from exc
        return dataclasses.replace(turn, latency_s=time.perf_counter() - start,
                                   policy_version=self.policy_version,
                                   info={**turn.info, "attempts": attempts})

    def request_body(self, conversation: Conversation) -> dict[str, Any]:
        """The JSON body sent for ``conversation``."""
        raise NotImplementedError

    def parse_answer(self, data: dict[str, Any]) -> AgentTurn:
        """The turn in a JSON answer; raises LookupError, TypeError or ValueError when malformed."""
        raise NotImplementedError

    async def _post(self, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """POST ``body``; returns the JSON answer and the attempts it took.

        Raises:
            AgentTimeout: the server did not answer in time, retries included.
            AgentHTTPError: an error status, a failed connection, or an answer
                that is not a JSON object.
        """
        max_attempts = self._transport.policy.max_retries + 1
        try:
            response = await self._get_client().post(self.url, json=body)
        except httpx.TimeoutException as exc:
            self.stats.failed += 1
            raise self._timeout_error(exc, max_attempts) from exc
        except httpx.TransportError as exc:
            self.stats.failed += 1
            attempts = max_attempts if isinstance(exc, RETRYABLE_ERRORS) else 1
            raise http_error(self.url, None, f"{type(exc).__name__}: {exc}", attempts) from exc
        attempts = int(response.extensions.get(ATTEMPTS, 1))
        if response.status_code >= 400:
            self.stats.failed += 1
            raise http_error(self.url, response.status_code, response.text[:500], attempts)
        try:
            data = response.json()
        except json.JSONDecodeError as exc:
            self.stats.failed += 1
            raise http_error(self.url, response.status_code, "answer is not JSON",
                             attempts) from exc
        if not isinstance(data, dict):
            self.stats.failed += 1
            raise http_error(self.url, response.status_code, "answer is not a JSON object",
                             attempts)
        return data, attempts

    def _get_client(self) -> httpx.AsyncClient:
        """The client, opened on first use (so constructing an agent needs no event loop)."""
        if self._closed:
            raise RuntimeError(f"This {type(self).__name__} is closed; create a new one.")
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


def http_error(url: str, status: int | None, detail: str, attempts: int) -> AgentHTTPError:
    """An :class:`AgentHTTPError` that says what failed and what to check."""
    what = f"HTTP {status}" if status is not None else "connection failure"
    hint = (
        "The request itself was rejected: check the model name, the messages and max_tokens."
        if status is not None and status < 500 and status not in (408, 425, 429)
        else "Retries are exhausted: check that the server is up and not overloaded."
    )
    err = AgentHTTPError(f"{url}: {what} after {attempts} attempt(s): {detail}. {hint}")
    err.url, err.status_code, err.detail, err.attempts = url, status, detail, attempts  # type: ignore[attr-defined]
    return err
