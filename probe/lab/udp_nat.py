"""A userspace UDP NAT with conntrack's flow states, and a switch the kernel lacks.

Each client address gets its own upstream socket (its own public port), as a
NAT binding does. A binding expires ``unreplied_s`` after its last counted
packet until it has seen a reply and a packet ``stream_after_s`` after its
first, then ``stream_s`` after it (Linux's nf_conntrack_udp_timeout and
_stream; RFC 4787 REQ-5 and REQ-6). With ``inbound_refresh`` False only the client's
packets count, as RFC 4787 REQ-6a allows; Linux always counts both
directions, so this is the only lab where a test can see "no". A datagram
out after expiry makes a new binding on a new port; one in is dropped.

Used by tests, benchmarks and the test kit (probe/testing) on loopback only.
Timers are checked exactly when a packet arrives; a timer per binding also
forgets it at its deadline, so an ``observer`` hears "expired" when it
happens ("opened" and "dropped" too), and ``forget_all`` can end every
binding at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

Address = tuple[str, int]

#: observer(kind, binding number, client address, bytes): called on the event loop.
Observer = Callable[[str, int, Address, int], None]


@dataclass(frozen=True)
class UdpTimers:
    unreplied_s: float
    stream_s: float
    inbound_refresh: bool = True
    stream_after_s: float = 2.0


@dataclass
class Binding:
    """One client address's mapping: the timer state, without I/O."""

    timers: UdpTimers
    created: float
    last: float
    replied: bool = False
    stream: bool = False
    number: int = 0

    def expires(self) -> float:
        return self.last + (self.timers.stream_s if self.stream else self.timers.unreplied_s)

    def packet(self, now: float, outbound: bool) -> bool:
        """A packet crosses at ``now``; False if the binding had expired."""
        if now > self.expires():
            return False
        if not outbound:
            self.replied = True
        if self.replied and now - self.created > self.timers.stream_after_s:
            self.stream = True
        if outbound or self.timers.inbound_refresh:
            self.last = now
        return True


class _Upstream(asyncio.DatagramProtocol):
    def __init__(self, nat: UdpNat, client: Address) -> None:
        self.nat = nat
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.nat.inbound(self, data)


class _Inside(asyncio.DatagramProtocol):
    def __init__(self, nat: UdpNat) -> None:
        self.nat = nat

    def datagram_received(self, data: bytes, addr: Address) -> None:
        asyncio.get_running_loop().create_task(self.nat.outbound(data, addr))


class UdpNat:
    """Listen on one address, relay to ``upstream`` through per-client bindings."""

    def __init__(
        self,
        upstream: Address,
        timers: UdpTimers,
        clock: Callable[[], float] = time.monotonic,
        observer: Observer | None = None,
    ) -> None:
        self.upstream = upstream
        self.timers = timers
        self.clock = clock
        self.observer = observer
        self.bindings: dict[Address, tuple[Binding, _Upstream]] = {}
        self.expired = 0
        self.opened = 0
        self._inside: asyncio.DatagramTransport | None = None
        self._deadlines: dict[Address, asyncio.TimerHandle] = {}

    async def listen(self, host: str, port: int) -> Address:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _Inside(self), local_addr=(host, port))
        self._inside = transport
        bound = transport.get_extra_info("sockname")
        return str(bound[0]), int(bound[1])

    async def outbound(self, data: bytes, client: Address) -> None:
        now = self.clock()
        entry = self.bindings.get(client)
        if entry is not None and not entry[0].packet(now, outbound=True):
            self._forget(client)
            entry = None
        if entry is None:
            loop = asyncio.get_running_loop()
            # A new binding gets a new public port: a fresh socket.
            _, upstream = await loop.create_datagram_endpoint(
                lambda: _Upstream(self, client), remote_addr=self.upstream
            )
            self.opened += 1
            entry = (Binding(self.timers, now, now, number=self.opened), upstream)
            self.bindings[client] = entry
            self._tell("opened", entry[0], client)
        self._arm(client, entry[0])
        if entry[1].transport is not None:
            entry[1].transport.sendto(data)

    def inbound(self, upstream: _Upstream, data: bytes) -> None:
        entry = self.bindings.get(upstream.client)
        if entry is None or entry[1] is not upstream:
            return
        if not entry[0].packet(self.clock(), outbound=False):
            self._tell("dropped", entry[0], upstream.client, len(data))
            self._forget(upstream.client)
            return
        self._arm(upstream.client, entry[0])
        if self._inside is not None:
            self._inside.sendto(data, upstream.client)

    def _tell(self, kind: str, binding: Binding, client: Address, nbytes: int = 0) -> None:
        if self.observer is not None:
            self.observer(kind, binding.number, client, nbytes)

    def _arm(self, client: Address, binding: Binding) -> None:
        """Wake at the binding's deadline (a packet may have moved it)."""
        old = self._deadlines.pop(client, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._deadlines[client] = loop.call_at(
            loop.time() + max(0.0, binding.expires() - self.clock()), self._deadline, client, binding
        )

    def _deadline(self, client: Address, binding: Binding) -> None:
        self._deadlines.pop(client, None)
        entry = self.bindings.get(client)
        if entry is None or entry[0] is not binding:
            return
        if self.clock() <= binding.expires():
            self._arm(client, binding)
            return
        self._forget(client)

    def set_timers(self, timers: UdpTimers) -> None:
        """New timers for every binding, live ones included."""
        self.timers = timers
        for client, (binding, _) in list(self.bindings.items()):
            binding.timers = timers
            self._arm(client, binding)

    def forget_all(self) -> int:
        """Forget every binding now; how many were forgotten."""
        clients = list(self.bindings)
        for client in clients:
            self._forget(client)
        return len(clients)

    def _forget(self, client: Address, expired: bool = True) -> None:
        deadline = self._deadlines.pop(client, None)
        if deadline is not None:
            deadline.cancel()
        entry = self.bindings.pop(client, None)
        if entry is not None:
            if expired:
                self.expired += 1
                self._tell("expired", entry[0], client)
            if entry[1].transport is not None:
                entry[1].transport.close()

    def close(self) -> None:
        # Shutting down is not expiry: nothing is counted or told.
        for client in list(self.bindings):
            with contextlib.suppress(Exception):
                self._forget(client, expired=False)
        if self._inside is not None:
            self._inside.close()
