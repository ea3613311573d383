"""Start a server and an emulator in-process for a test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from probe.lab.emulator import Emulator
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
