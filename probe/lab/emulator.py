"""A userspace middlebox that forgets idle flows: what ``natprobe emulate`` runs.

It relays TCP between a client and an upstream, and forgets a flow once it
has carried no data, in either direction, for longer than the idle timeout:

* ``drop``: stops forwarding silently; both sockets stay open, data vanishes.
* ``reset``: resets both sides (RST).
* ``close``: closes both sides (FIN).

Limits, by construction: it terminates TCP on both sides, so only payload
bytes count as activity. Kernel keepalive probes carry no payload and never
cross it, so it cannot judge keepalive settings; use the kernel NAT lab
(tests/lab) for those. Its timer is exact to the event loop's resolution,
unlike NATs that sweep their tables now and then.

An ``observer`` hears what happens to each flow ("opened", "expired",
"dropped", "reset", "closed"), which is what the test kit (probe/testing)
records; ``forget_all`` and ``set_idle_timeout`` let a test steer it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MODES = ("drop", "reset", "close")

#: observer(kind, flow id, client address, bytes): called on the event loop.
Observer = Callable[[str, int, tuple[str, int], int], None]


@dataclass
class EmulatorStats:
    flows: int = 0
    active: int = 0
    expired: int = 0
    bytes_dropped: int = 0
    #: Idle seconds each expired flow had reached when it was forgotten.
    expired_idle_s: list[float] = field(default_factory=list)


def _abortive(writer: asyncio.StreamWriter) -> None:
    """Close so that the kernel sends RST rather than FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Flow:
    def __init__(
        self,
        emulator: Emulator,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        number: int,
    ) -> None:
        self.emulator = emulator
        self.client = client
        self.upstream = upstream
        self.number = number
        peer = client[1].get_extra_info("peername")
        self.peer: tuple[str, int] = (str(peer[0]), int(peer[1])) if peer else ("", 0)
        self.last = emulator.clock()
        self.expired = False
        self._timer: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        delay = self.last + self.emulator.idle_timeout_s - self.emulator.clock()
        self._timer = loop.call_later(max(0.0, delay), self._check)

    def rearm(self) -> None:
        """The timeout changed: wake at the new deadline, not the old one."""
        if self._timer is not None:
            self._timer.cancel()
            self._arm()

    def _check(self) -> None:
        self._timer = None
        if self.expired:
            return
        idle = self.emulator.clock() - self.last
        if idle < self.emulator.idle_timeout_s:
            self._arm()
            return
        self.expire()

    def expire(self) -> None:
        """Forget the flow now, as the mode says."""
        if self.expired:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.expired = True
        stats = self.emulator.stats
        stats.expired += 1
        stats.expired_idle_s.append(self.emulator.clock() - self.last)
        self.emulator.tell("expired", self)
        mode = self.emulator.mode
        if mode == "reset":
            _abortive(self.client[1])
            _abortive(self.upstream[1])
            self.emulator.tell("reset", self)
        elif mode == "close":
            self.client[1].close()
            self.upstream[1].close()
            self.emulator.tell("closed", self)

    def abort(self) -> None:
        self.client[1].transport.abort()
        self.upstream[1].transport.abort()

    async def pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                return
            if self.expired:
                self.emulator.stats.bytes_dropped += len(data)
                self.emulator.tell("dropped", self, len(data))
                continue
            self.last = self.emulator.clock()
            writer.write(data)
            await writer.drain()

    async def run(self) -> None:
        stats = self.emulator.stats
        stats.active += 1
        try:
            pumps = [
                asyncio.create_task(self.pump(self.client[0], self.upstream[1])),
                asyncio.create_task(self.pump(self.upstream[0], self.client[1])),
            ]
            _, pending = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            for task in pumps:
                with contextlib.suppress(asyncio.CancelledError, OSError, ConnectionError):
                    await task
        finally:
            stats.active -= 1
            if self._timer is not None:
                self._timer.cancel()
            for _, writer in (self.client, self.upstream):
                if self.expired and self.emulator.mode == "drop":
                    writer.transport.abort()
                else:
                    writer.close()


class Emulator:
    """Listen on one address, relay to ``upstream``, forget idle flows."""

    def __init__(
        self,
        upstream: tuple[str, int],
        idle_timeout_s: float,
        mode: str = "drop",
        clock: Callable[[], float] = time.monotonic,
        observer: Observer | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if idle_timeout_s <= 0:
            raise ValueError("idle timeout must be positive")
        self.upstream = upstream
        self.idle_timeout_s = idle_timeout_s
        self.mode = mode
        self.clock = clock
        self.observer = observer
        self.stats = EmulatorStats()
        self._server: asyncio.base_events.Server | None = None
        self._flows: set[_Flow] = set()
        self._done = asyncio.Event()

    async def listen(self, host: str, port: int) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._accept, host, port, reuse_address=True)
        bound = self._server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    def tell(self, kind: str, flow: _Flow, nbytes: int = 0) -> None:
        if self.observer is not None:
            self.observer(kind, flow.number, flow.peer, nbytes)

    def set_idle_timeout(self, seconds: float) -> None:
        """Change the timeout; flows already idle longer expire at once."""
        if seconds <= 0:
            raise ValueError("idle timeout must be positive")
        self.idle_timeout_s = seconds
        for flow in list(self._flows):
            flow.rearm()

    def forget_all(self) -> int:
        """Forget every live flow now; how many were forgotten."""
        live = [flow for flow in self._flows if not flow.expired]
        for flow in live:
            flow.expire()
        return len(live)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.flows += 1
        number = self.stats.flows
        try:
            upstream = await asyncio.open_connection(*self.upstream)
        except OSError:
            # The upstream refuses: tell the client the way a NAT would not,
            # but a proxy does, by closing.
            writer.close()
            return
        flow = _Flow(self, (reader, writer), upstream, number)
        self._flows.add(flow)
        self.tell("opened", flow)
        try:
            await flow.run()
        finally:
            self._flows.discard(flow)
            if not self._flows:
                self._done.set()

    async def close(self) -> None:
        """Stop listening and end every flow; their relays then finish."""
        if self._server is not None:
            self._server.close()
        if self._flows:
            self._done.clear()
            for flow in list(self._flows):
                flow.abort()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._done.wait()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
