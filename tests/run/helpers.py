"""A natprobe server in-process for a test; the NAT in front of it comes from
the test kit's fixtures (``expiring_nat``, ``expiring_udp_nat``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from probe.net.server import ProbeServer, ServerConfig
from probe.testing import ExpiringNat, ExpiringUdpNat


@dataclass
class Served:
    server: ProbeServer
    tcp: tuple[str, int]
    udp: tuple[str, int] | None


@asynccontextmanager
async def probe_server(config: ServerConfig | None = None, udp: bool = False) -> AsyncIterator[Served]:
    """A server on loopback (TCP, and UDP if asked), shut down on exit."""
    server = ProbeServer(config)
    tcp = await server.listen_tcp("127.0.0.1", 0)
    udp_address = await server.listen_udp("127.0.0.1", 0) if udp else None
    try:
        yield Served(server, tcp, udp_address)
    finally:
        await server.shutdown()


def expired(nat: ExpiringNat | ExpiringUdpNat) -> int:
    """How many flows or bindings the NAT forgot."""
    return sum(1 for event in nat.events if event.kind == "expired")
