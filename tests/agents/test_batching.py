"""The micro-batching queue in front of a blocking batch function."""

from __future__ import annotations

import asyncio
import threading

import pytest

from toolgym.agents.batching import Batcher


def doubler(seen: list[list[int]]):
    def run(xs: list[int]) -> list[int]:
        seen.append(list(xs))
        return [x * 2 for x in xs]

    return run


async def test_concurrent_requests_share_one_call_and_keep_their_order() -> None:
    seen: list[list[int]] = []
    batcher = Batcher(doubler(seen), max_batch=16, max_wait_s=0.05)
    assert await asyncio.gather(*(batcher.submit(i) for i in range(5))) == [0, 2, 4, 6, 8]
    batcher.close()
    assert seen == [[0, 1, 2, 3, 4]] and (batcher.calls, batcher.requests) == (1, 5)


async def test_max_batch_splits_and_a_full_batch_does_not_wait() -> None:
    seen: list[list[int]] = []
    batcher = Batcher(doubler(seen), max_batch=2, max_wait_s=10.0)
    results = await asyncio.wait_for(asyncio.gather(*(batcher.submit(i) for i in range(4))), 5)
    batcher.close()
    assert results == [0, 2, 4, 6]
    assert seen == [[0, 1], [2, 3]]


async def test_requests_arriving_during_a_batch_form_the_next_batch() -> None:
    release = threading.Event()
    seen: list[list[int]] = []

    def run(xs: list[int]) -> list[int]:
        seen.append(list(xs))
        release.wait(5)
        return xs

    batcher = Batcher(run, max_batch=8, max_wait_s=0.0)
    first = asyncio.ensure_future(batcher.submit(0))
    await asyncio.sleep(0.05)  # batch [0] is running in the worker thread
    later = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2, 3)]
    await asyncio.sleep(0.05)
    release.set()
    assert await asyncio.gather(first, *later) == [0, 1, 2, 3]
    batcher.close()
    assert seen == [[0], [1, 2, 3]]


async def test_an_error_reaches_every_caller_of_the_batch() -> None:
    def boom(xs: list[int]) -> list[int]:
        raise RuntimeError("model crashed")

    batcher = Batcher(boom, max_wait_s=0.02)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    batcher.close()
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_a_cancelled_caller_does_not_break_the_batch() -> None:
    batcher = Batcher(doubler([]), max_wait_s=0.05)
    doomed = asyncio.ensure_future(batcher.submit(1))
    kept = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0)
    doomed.cancel()
    assert await kept == 4
    with pytest.raises(asyncio.CancelledError):
        await doomed
    batcher.close()


def test_a_batcher_serves_successive_event_loops() -> None:
    batcher = Batcher(doubler([]), max_wait_s=0.0)
    assert asyncio.run(batcher.submit(1)) == 2
    assert asyncio.run(batcher.submit(2)) == 4
    batcher.close()
