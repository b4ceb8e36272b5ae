"""The one sync-over-async bridge: a daemon thread that owns an event loop.

toolgym's core is async. The sync twins (``exec``, ``reset``, ``step`` …) run
their coroutine on this loop and block for the result, so library code never
creates an event loop of its own and works the same inside Jupyter (where a
loop is already running) and in plain scripts. This module is the only place
that creates a loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def background_loop() -> asyncio.AbstractEventLoop:
    """Return the bridge's event loop, starting its daemon thread on first use."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="toolgym-sync-bridge", daemon=True
            )
            thread.start()
            _loop = loop
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the bridge loop and return its result (blocking).

    Raises:
        RuntimeError: when called from the bridge loop itself, which would
            deadlock.
    """
    loop = background_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coro.close()
        raise RuntimeError("run_sync() called from the toolgym bridge loop; await the async twin")
    future = asyncio.run_coroutine_threadsafe(coro, loop)
    try:
        return future.result()
    except KeyboardInterrupt:
        future.cancel()
        raise
