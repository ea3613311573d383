"""A raw line client and an in-process server for the server's tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from probe.net.server import ProbeServer, ServerConfig
from tests.conftest import scaled

#: The clients a test opened, closed when its server stops (per test run,
#: not shared between tests).
_OPENED: ContextVar[list[Client]] = ContextVar("opened_clients")


async def _with_server(config: ServerConfig, body: Callable[[ProbeServer, int], Awaitable[None]]) -> None:
    _OPENED.set([])
    server = ProbeServer(config)
    _, port = await server.listen_tcp("127.0.0.1", 0)
    try:
        await body(server, port)
    finally:
        await server.shutdown()
        await Client.close_all()


def run_with_server(body: Callable[[ProbeServer, int], Awaitable[None]], **config: Any) -> None:
    asyncio.run(_with_server(ServerConfig(**config), body))


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        opened = _OPENED.get(None)
        if opened is not None:
            opened.append(client)
        return client

    @classmethod
    async def close_all(cls) -> None:
        opened = _OPENED.get([])
        while opened:
            writer = opened.pop().writer
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def send(self, obj: dict[str, Any] | bytes) -> None:
        self.writer.write(obj if isinstance(obj, bytes) else json.dumps(obj).encode() + b"\n")

    async def recv(self, wait_s: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(scaled(wait_s)):
            line = await self.reader.readline()
        assert line, "connection closed"
        msg: dict[str, Any] = json.loads(line)
        return msg

    async def closed(self, wait_s: float = 5.0) -> bool:
        async with asyncio.timeout(scaled(wait_s)):
            return await self.reader.read() == b""

    async def rest(self, wait_s: float = 5.0) -> bytes:
        """What arrives until the connection ends, by FIN or by RST (an aborted session)."""
        data = b""
        async with asyncio.timeout(scaled(wait_s)):
            while True:
                try:
                    chunk = await self.reader.read(4096)
                except ConnectionResetError:
                    return data
                if not chunk:
                    return data
                data += chunk

    async def hello(self, **extra: Any) -> dict[str, Any]:
        self.send({"op": "hello", "v": 1, **extra})
        return await self.recv()
