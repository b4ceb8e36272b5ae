"""One retry policy for HTTP backends, applied at the transport level.

Inference servers under RL load answer 429 (queue full), 503 (restarting after
a weight sync) or drop connections; a rollout must ride those out without
hammering the server, and a run must know how often it happened. The policy is
a value object (:class:`RetryPolicy`), the mechanism an ``httpx`` transport
wrapper (:class:`RetryTransport`) that every client of an agent shares, and the
evidence a counter object (:class:`HTTPStats`).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)
"""Transport failures worth another attempt: timeouts, refused/reset connections, hang-ups."""

ATTEMPTS = "toolgym.attempts"
"""Response extension key: how many attempts the response took."""


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before another attempt.

    Delays grow as ``backoff_s * 2**retry`` up to ``backoff_max_s``, each shortened
    by a random fraction up to ``jitter`` so that many episodes refused at once do
    not come back at once. A ``Retry-After`` header replaces the computed delay.

    Example:
        >>> p = RetryPolicy(backoff_s=1.0, jitter=0.0)
        >>> [p.delay(r) for r in range(3)], p.delay(0, retry_after=7.0)
        ([1.0, 2.0, 4.0], 7.0)
    """

    max_retries: int = 4
    """Attempts after the first; 0 disables retrying."""
    backoff_s: float = 0.5
    backoff_max_s: float = 20.0
    jitter: float = 0.5
    """Each delay is multiplied by a uniform factor in ``[1 - jitter, 1]``."""
    retry_after_max_s: float = 60.0
    """Cap on a server's ``Retry-After`` request."""
    statuses: frozenset[int] = frozenset({408, 425, 429, 500, 502, 503, 504})
    """HTTP statuses that are retried; any other error status is returned at once."""

    def delay(
        self, retry: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.retry_after_max_s))
        base = min(self.backoff_max_s, self.backoff_s * 2**retry)
        draw = rng.random() if rng is not None else random.random()
        return base * (1.0 - self.jitter * draw)


DEFAULT_RETRY = RetryPolicy()


@dataclass
class HTTPStats:
    """What the transport saw. Retries are expected under load; watch ``exhausted``."""

    requests: int = 0
    """Logical requests (each may take several attempts)."""
    attempts: int = 0
    retries: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    """Retries per cause: status code (``"429"``) or exception name (``"ReadTimeout"``)."""
    exhausted: int = 0
    """Requests that failed on their last allowed attempt."""
    failed: int = 0
    """Requests that ended in an error raised to the caller (set by the agent)."""
    slept_s: float = 0.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (delta-seconds or an HTTP date).

    Example:
        >>> parse_retry_after("3"), parse_retry_after("soon")
        (3.0, None)
    """
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class RetryTransport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport that retries another transport under a :class:`RetryPolicy`.

    The response body is read inside the loop, so a read timeout in the middle
    of a body is retried like one before the headers.

    Args:
        transport: The transport that does the I/O (default: ``httpx.AsyncHTTPTransport()``).
        policy: When to retry and how long to wait.
        stats: Counters to update (default: a new :class:`HTTPStats`).
        sleep: The sleep function (tests may pass a fake clock).
        rng: Jitter source.
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        policy: RetryPolicy = DEFAULT_RETRY,
        stats: HTTPStats | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._inner = transport or httpx.AsyncHTTPTransport()
        self.policy = policy
        self.stats = stats or HTTPStats()
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``, retrying retryable statuses and transport errors."""
        self.stats.requests += 1
        retry = 0
        while True:
            self.stats.attempts += 1
            last = retry >= self.policy.max_retries
            try:
                response = await self._attempt(request, retry + 1)
            except RETRYABLE_ERRORS as exc:
                if last:
                    self.stats.exhausted += 1
                    raise
                reason, retry_after = type(exc).__name__, None
            else:
                if response.status_code not in self.policy.statuses:
                    return response
                if last:
                    self.stats.exhausted += 1
                    return response
                reason = str(response.status_code)
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            await self._wait(retry, reason, retry_after)
            retry += 1

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()

    async def _attempt(self, request: httpx.Request, attempt: int) -> httpx.Response:
        """One attempt, body included; ``response.extensions["toolgym.attempts"]`` counts them."""
        response = await self._inner.handle_async_request(request)
        try:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=raw,
            request=request,
            extensions={**response.extensions, ATTEMPTS: attempt},
        )

    async def _wait(self, retry: int, reason: str, retry_after: float | None) -> None:
        self.stats.retries += 1
        self.stats.by_reason[reason] += 1
        delay = self.policy.delay(retry, retry_after, self._rng)
        self.stats.slept_s += delay
        await self._sleep(delay)
