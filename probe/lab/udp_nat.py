"""A userspace UDP NAT with conntrack's flow states, and a switch the kernel lacks.

Each client address gets its own upstream socket (its own public port), as a
NAT binding does. A binding expires ``unreplied_s`` after its last counted
packet until it has seen a reply and a packet ``stream_after_s`` after its
first, then ``stream_s`` after it (Linux's nf_conntrack_udp_timeout and
_stream, docs/METHOD §9). With ``inbound_refresh`` False only the client's
packets count, as RFC 4787 REQ-6a allows; Linux always counts both
directions, so this is the only lab where a test can see "no". A datagram
out after expiry makes a new binding on a new port; one in is dropped.

Used by tests and benchmarks on loopback only; timers are checked when a
packet arrives, so an expired binding costs nothing until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

Address = tuple[str, int]


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

    def __init__(self, upstream: Address, timers: UdpTimers, clock: Callable[[], float] = time.monotonic) -> None:
        self.upstream = upstream
        self.timers = timers
        self.clock = clock
        self.bindings: dict[Address, tuple[Binding, _Upstream]] = {}
        self.expired = 0
        self._inside: asyncio.DatagramTransport | None = None

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
            entry = (Binding(self.timers, now, now), upstream)
            self.bindings[client] = entry
        if entry[1].transport is not None:
            entry[1].transport.sendto(data)

    def inbound(self, upstream: _Upstream, data: bytes) -> None:
        entry = self.bindings.get(upstream.client)
        if entry is None or entry[1] is not upstream:
            return
        if not entry[0].packet(self.clock(), outbound=False):
            self._forget(upstream.client)
            return
        if self._inside is not None:
            self._inside.sendto(data, upstream.client)

    def _forget(self, client: Address) -> None:
        entry = self.bindings.pop(client, None)
        if entry is not None:
            self.expired += 1
            if entry[1].transport is not None:
                entry[1].transport.close()

    def close(self) -> None:
        for client in list(self.bindings):
            with contextlib.suppress(Exception):
                self._forget(client)
        if self._inside is not None:
            self._inside.close()
