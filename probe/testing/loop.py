"""An event loop on a thread of its own, so that fixtures stay synchronous.

The code under test may be blocking sockets or an ``asyncio.run`` of its own;
either way the middlebox must keep relaying while the test's thread waits.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

#: How long starting, steering or stopping the middlebox may take.
STEP_TIMEOUT_S = 10.0


class LoopThread:
    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def run(self, make: Callable[[], Awaitable[T]], timeout: float = STEP_TIMEOUT_S) -> T:
        """Await ``make()`` on the loop's thread and return its result here."""

        async def call() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout)

    def call(self, function: Callable[[], T], timeout: float = STEP_TIMEOUT_S) -> T:
        """Call ``function`` on the loop's thread (the middlebox is not thread-safe)."""

        async def call() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout)

    def stop(self) -> None:
        """End the loop and its thread; cancel whatever is still running on it."""
        if self._loop.is_closed():
            return

        async def cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._thread.is_alive():
            self.run(cancel_rest)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(STEP_TIMEOUT_S)
        self._loop.close()
