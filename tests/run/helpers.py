"""Start a server and an emulator in-process for a test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from probe.core.targets import Target
from probe.lab.emulator import Emulator
from probe.lab.udp_nat import UdpNat, UdpTimers
from probe.net.server import ProbeServer, ServerConfig


@dataclass
class Path:
    server: ProbeServer
    emulator: Emulator
    host: str
    port: int


@asynccontextmanager
async def emulated_path(
    timeout_s: float, mode: str = "drop", config: ServerConfig | None = None
) -> AsyncIterator[Path]:
    server = ProbeServer(config)
    upstream = await server.listen_tcp("127.0.0.1", 0)
    emulator = Emulator(upstream, timeout_s, mode)
    host, port = await emulator.listen("127.0.0.1", 0)
    try:
        yield Path(server, emulator, host, port)
    finally:
        await emulator.close()
        await server.shutdown()


@dataclass
class UdpPath:
    server: ProbeServer
    nat: UdpNat
    #: udp:// through the NAT, tcp:// straight to the server.
    target: Target
    control: Target


@asynccontextmanager
async def udp_path(timers: UdpTimers, config: ServerConfig | None = None) -> AsyncIterator[UdpPath]:
    """A server with TCP control and UDP, and a userspace UDP NAT in front of its UDP port."""
    server = ProbeServer(config)
    _, tcp_port = await server.listen_tcp("127.0.0.1", 0)
    udp = await server.listen_udp("127.0.0.1", 0)
    nat = UdpNat(udp, timers)
    host, port = await nat.listen("127.0.0.1", 0)
    try:
        yield UdpPath(server, nat, Target("udp", host, port), Target("tcp", "127.0.0.1", tcp_port))
    finally:
        nat.close()
        await server.shutdown()
