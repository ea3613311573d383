"""Sending heartbeats of either kind and feeding their answers to a Heartbeat."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

from probe.core.heartbeat import Heartbeat
from probe.errors import UsageError


class HeartbeatSender:
    """``send_message(n)`` sends heartbeat number n as an application message;
    ``ping()`` sends a WebSocket ping and returns when its pong comes (None
    where the transport has no pings)."""

    def __init__(
        self,
        beat: Heartbeat,
        clock: Callable[[], float],
        send_message: Callable[[int], Awaitable[None]],
        ping: Callable[[], Awaitable[float]] | None,
    ) -> None:
        self.beat = beat
        self.clock = clock
        self._send_message = send_message
        self._ping = ping
        self._pending: set[asyncio.Future[float]] = set()

    async def send(self) -> None:
        number = self.beat.send(self.clock())
        if self.beat.config.kind == "message":
            await self._send_message(number)
            return
        if self._ping is None:
            raise UsageError("--heartbeat-kind ping needs a ws:// or wss:// target")
        waiter: asyncio.Future[float] = asyncio.ensure_future(self._ping())
        self._pending.add(waiter)
        waiter.add_done_callback(functools.partial(self._pong, number=number))

    def _pong(self, waiter: asyncio.Future[float], number: int) -> None:
        self._pending.discard(waiter)
        if not waiter.cancelled() and waiter.exception() is None:
            self.beat.answered(self.clock(), number)

    def cancel(self) -> None:
        """Stop waiting for pongs (the session is over)."""
        for waiter in self._pending:
            waiter.cancel()
