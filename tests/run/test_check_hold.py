"""check through the emulator, and hold against plain TCP servers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from probe.core.keepalive import KeepaliveSettings
from probe.core.targets import Target
from probe.errors import TargetError
from probe.net.dial import Endpoint
from probe.run.check import CheckOptions, run_check
from probe.run.hold import HoldOptions, run_hold
from probe.testing import ExpiringNat
from tests.conftest import scaled
from tests.run.helpers import probe_server

T = scaled(1.5)


@pytest.mark.parametrize(("idle", "passes"), [(0.5, True), (2.5, False)])
def test_check_passes_below_the_timeout_and_fails_above(
    expiring_nat: Callable[..., ExpiringNat], idle: float, passes: bool
) -> None:
    async def body() -> dict[str, object]:
        async with probe_server() as served:
            nat = expiring_nat(upstream=served.tcp, idle_timeout=T)
            options = CheckOptions(
                Endpoint(Target("tcp", nat.host, nat.port)), idle_s=scaled(idle), grace_s=scaled(0.5)
            )
            return (await run_check(options)).to_json()

    result = asyncio.run(body())
    assert result["passed"] is passes
    assert result["failure_mode"] == (None if passes else "silent_drop")
    assert result["client_originated"] is False


def test_check_with_keepalive_says_its_evidence_is_client_originated(expiring_nat: Callable[..., ExpiringNat]) -> None:
    async def body() -> dict[str, object]:
        async with probe_server() as served:
            nat = expiring_nat(upstream=served.tcp, idle_timeout=T)
            keep = KeepaliveSettings(idle_s=1, interval_s=1, count=3)
            options = CheckOptions(Endpoint(Target("tcp", nat.host, nat.port)), idle_s=0.3, keepalive=keep)
            return (await run_check(options)).to_json()

    result = asyncio.run(body())
    assert result["client_originated"] is True
    assert result["keepalive_in_force"] == {
        "enabled": True,
        "idle_s": 1,
        "interval_s": 1,
        "count": 3,
        "user_timeout_s": 0.0,
    }


@contextlib.asynccontextmanager
async def plain_server(
    on_client: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[int]:
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await on_client(reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        # Server.close() leaves accepted connections open (Python 3.11).
        for writer in writers:
            writer.transport.abort()
        with contextlib.suppress(Exception):
            await server.wait_closed()


def _hold(
    on_client: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]], duration: float
) -> dict[str, object]:
    async def body() -> dict[str, object]:
        async with plain_server(on_client) as port:
            return (await run_hold(HoldOptions(Endpoint(Target("tcp", "127.0.0.1", port)), duration))).to_json()

    return asyncio.run(body())


def test_hold_lasts_the_duration_against_a_quiet_server() -> None:
    async def quiet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    result = _hold(quiet, scaled(1.0))
    assert result["ended"] == "duration" and result["lasted"] is True
    assert result["alive_s"] == pytest.approx(scaled(1.0), abs=0.1)


def test_hold_sees_a_close() -> None:
    async def closer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye\n")
        await writer.drain()
        writer.close()

    result = _hold(closer, 10.0)
    assert result["ended"] == "closed" and result["bytes_received"] == 4
    assert result["alive_s"] < 5.0


def test_hold_sees_a_reset() -> None:
    async def resetter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    result = _hold(resetter, 10.0)
    assert result["ended"] == "reset" and result["lasted"] is False


def test_hold_refused_is_a_target_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: refused
        with pytest.raises(TargetError, match="refused"):
            asyncio.run(run_hold(HoldOptions(Endpoint(Target("tcp", "127.0.0.1", port)), 1.0)))
