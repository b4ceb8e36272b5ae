"""Gather concurrent requests into batches for one blocking call in a worker thread.

Many episodes run concurrently on one event loop, each awaiting its own
``act``; a local model is far faster on one batch of 32 than on 32 calls of
one. :class:`Batcher` collects requests for up to ``max_wait_s`` (or until
``max_batch`` are waiting), runs the batch function in a single worker thread
so the event loop keeps serving sandboxes meanwhile, and hands each caller its
own result. Requests that arrive while a batch runs form the next batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

Req = TypeVar("Req")
Res = TypeVar("Res")


@dataclass(frozen=True)
class _Item(Generic[Req, Res]):
    request: Req
    future: asyncio.Future[Res]
    arrival: float
    """Loop time of submission: a batch's wait is measured from its first request's arrival."""


class Batcher(Generic[Req, Res]):
    """Micro-batching queue in front of ``run(requests) -> results`` (same order, same length).

    Args:
        run: Blocking batch function, called in the worker thread.
        max_batch: Most requests per call.
        max_wait_s: How long the first request of a batch waits for company.

    Example:
        >>> import asyncio
        >>> b = Batcher(lambda xs: [x * 2 for x in xs], max_batch=8, max_wait_s=0.01)
        >>> async def main():
        ...     return await asyncio.gather(*(b.submit(i) for i in range(3)))
        >>> asyncio.run(main()), b.calls
        ([0, 2, 4], 1)
        >>> b.close()
    """

    def __init__(
        self,
        run: Callable[[list[Req]], Sequence[Res]],
        *,
        max_batch: int = 32,
        max_wait_s: float = 0.005,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self._run = run
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="toolgym-batch")
        self._queue: asyncio.Queue[_Item[Req, Res]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: asyncio.Task[None] | None = None
        self._full = asyncio.Event()
        self.calls = 0
        """Batch calls made so far."""
        self.requests = 0
        """Requests served so far."""

    async def submit(self, request: Req) -> Res:
        """Queue ``request`` and wait for its result (exceptions of the batch call propagate)."""
        loop = asyncio.get_running_loop()
        queue = self._queue_for(loop)
        future: asyncio.Future[Res] = loop.create_future()
        queue.put_nowait(_Item(request, future, loop.time()))
        if queue.qsize() >= self.max_batch - 1:
            self._full.set()
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._drain(queue))
        return await future

    def close(self) -> None:
        """Stop the worker thread after the running batch; a second call does nothing."""
        self._executor.shutdown(wait=True)

    def _queue_for(self, loop: asyncio.AbstractEventLoop) -> asyncio.Queue[_Item[Req, Res]]:
        """The queue of ``loop``; a new loop (a new test, say) gets a new queue once idle."""
        if self._loop is not loop:
            if self._worker is not None and not self._worker.done():
                raise RuntimeError("Batcher is busy on another event loop; use one loop per agent.")
            self._loop, self._queue, self._worker = loop, asyncio.Queue(), None
            self._full = asyncio.Event()
        assert self._queue is not None
        return self._queue

    async def _drain(self, queue: asyncio.Queue[_Item[Req, Res]]) -> None:
        """Run batches until the queue is empty, then exit (no task outlives the work)."""
        while not queue.empty():
            batch = await self._collect(queue)
            live = [(i.request, i.future) for i in batch if not i.future.cancelled()]
            if not live:
                continue
            self.calls += 1
            self.requests += len(live)
            try:
                results = await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._run, [r for r, _ in live]
                )
            except Exception as exc:  # noqa: BLE001 - every caller of the batch gets the error
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), result in zip(live, results, strict=True):
                if not fut.done():
                    fut.set_result(result)

    async def _collect(self, queue: asyncio.Queue[_Item[Req, Res]]) -> list[_Item[Req, Res]]:
        """Take the first waiting request, then whatever arrives until it has waited ``max_wait_s``.

        Waits on an event that ``submit`` sets once a full batch is queued, not
        on ``queue.get`` with a timeout, so a timed-out wait can never lose a request.
        """
        batch = [queue.get_nowait()]
        remaining = batch[0].arrival + self.max_wait_s - asyncio.get_running_loop().time()
        if queue.qsize() < self.max_batch - 1 and remaining > 0:
            self._full.clear()
            try:
                await asyncio.wait_for(self._full.wait(), remaining)
            except TimeoutError:
                pass
        while len(batch) < self.max_batch and not queue.empty():
            batch.append(queue.get_nowait())
        return batch
