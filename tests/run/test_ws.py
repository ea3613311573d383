"""WebSocket sessions: discover and check against natprobe, hold against any server."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from http import HTTPStatus
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from probe.core.heartbeat import HeartbeatConfig
from probe.core.planner import PlannerConfig
from probe.core.targets import Target
from probe.net.dial import Endpoint
from probe.net.server import ProbeServer
from probe.net.ws_server import listen_ws
from probe.run.check import CheckOptions, run_check
from probe.run.discover import DiscoverOptions, DiscoverRun
from probe.run.hold_ws import WsHoldOptions, run_hold_ws
from probe.testing import ExpiringNat
from tests.conftest import run_cli, scaled

T = scaled(1.5)


NatFactory = Callable[..., ExpiringNat]


@contextlib.asynccontextmanager
async def ws_path(expiring_nat: NatFactory, timeout_s: float, mode: str) -> AsyncIterator[tuple[str, int]]:
    """A WebSocket server behind the test kit's expiring NAT: where to connect."""
    server = ProbeServer()
    upstream = await listen_ws(server, "127.0.0.1", 0)
    try:
        nat = expiring_nat(upstream=upstream, idle_timeout=timeout_s, mode=mode)
        yield nat.host, nat.port
    finally:
        await server.shutdown()


def test_discover_over_websocket_through_an_emulated_proxy(expiring_nat: NatFactory) -> None:
    async def body() -> dict[str, Any]:
        async with ws_path(expiring_nat, T, "close") as (host, port):
            target = Target("ws", host, port, "/natprobe")
            return (await DiscoverRun(DiscoverOptions(Endpoint(target), PlannerConfig())).run()).to_json()

    result = asyncio.run(body())
    assert result["transport"] == "ws" and result["target"].startswith("ws://")
    assert result["failure_mode"] == "closed"
    assert result["lower_s"] <= T <= result["upper_s"]
    assert result["upper_s"] - result["lower_s"] <= 0.5 + 1e-3


@pytest.mark.parametrize(("beat", "passes"), [(None, False), (HeartbeatConfig(0.4, kind="message"), True)])
def test_heartbeats_shorter_than_the_timeout_keep_the_session(
    expiring_nat: NatFactory, beat: HeartbeatConfig | None, passes: bool
) -> None:
    async def body() -> dict[str, Any]:
        async with ws_path(expiring_nat, T, "drop") as (host, port):
            options = CheckOptions(Endpoint(Target("ws", host, port, "/")), idle_s=2 * T, grace_s=0.5, heartbeat=beat)
            return (await run_check(options)).to_json()

    result = asyncio.run(body())
    assert result["passed"] is passes
    if beat is not None:
        assert result["client_originated"] is True
        assert result["heartbeat"]["answered"] >= 5 and result["heartbeat"]["missed"] == 0
        assert result["heartbeat"]["rtt_max_s"] < 0.4


@contextlib.asynccontextmanager
async def any_ws_server(handler: Callable[[ServerConnection], Awaitable[None]], **kwargs: Any) -> AsyncIterator[int]:
    async with serve(handler, "127.0.0.1", 0, ping_interval=None, **kwargs) as server:
        yield next(iter(server.sockets)).getsockname()[1]


def _hold(handler: Callable[[ServerConnection], Awaitable[None]], **options: Any) -> dict[str, Any]:
    async def body() -> dict[str, Any]:
        async with any_ws_server(handler) as port:
            return (
                await run_hold_ws(WsHoldOptions(Endpoint(Target("ws", "127.0.0.1", port, "/")), **options))
            ).to_json()

    return asyncio.run(body())


async def capped(ws: ServerConnection) -> None:
    # Answers pings (the library does) but ends every session at 0.8 s.
    with contextlib.suppress(TimeoutError, ConnectionClosed):
        async with asyncio.timeout(scaled(0.8)):
            await ws.wait_closed()
    await ws.close(4000, "bye")


def test_hold_reports_close_code_and_spots_a_lifetime_cap() -> None:
    result = _hold(capped, duration_s=10.0, heartbeat=HeartbeatConfig(0.2), repeat=3)
    assert result["ended"] == "closed" and result["lasted"] is False
    assert (result["close_code"], result["close_reason"]) == (4000, "bye")
    assert all(s["heartbeat"]["missed"] == 0 and s["heartbeat"]["answered"] >= 2 for s in result["sessions"])
    assert scaled(0.75) <= result["lifetime_cap_s"] < scaled(1.5)
    assert "lifetime cap" in result["note"]


def test_no_lifetime_cap_is_claimed_without_answered_heartbeats() -> None:
    result = _hold(capped, duration_s=10.0, repeat=2)
    assert result["lifetime_cap_s"] is None and result["note"] is None


async def echo(ws: ServerConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for message in ws:
            await ws.send(message)


async def mute(ws: ServerConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for _ in ws:
            pass


def test_message_heartbeats_count_any_reply() -> None:
    result = _hold(echo, duration_s=scaled(1.0), heartbeat=HeartbeatConfig(0.2, kind="message"), heartbeat_message="hb")
    assert result["ended"] == "duration" and result["lasted"] is True
    assert result["heartbeat"]["answered"] >= 3 and result["messages_received"] >= 3


def test_unanswered_heartbeat_ends_the_session() -> None:
    result = _hold(mute, duration_s=10.0, heartbeat=HeartbeatConfig(0.2, kind="message", timeout_s=0.3))
    assert result["ended"] == "heartbeat_timeout"
    assert result["heartbeat"]["missed"] >= 1
    # Timeline: first heartbeat at 0.2 s, unanswered after 0.3 s more.
    assert 0.45 <= result["alive_s"] < 1.2


@pytest.fixture
def forbidden_server() -> Iterator[int]:
    """A WebSocket server in a thread that rejects every handshake with 403."""
    ready = threading.Event()
    stop: list[asyncio.AbstractEventLoop] = []
    port: list[int] = []

    def reject(connection: ServerConnection, request: Any) -> Any:
        return connection.respond(HTTPStatus.FORBIDDEN, "go away\n")

    async def main() -> None:
        async with serve(echo, "127.0.0.1", 0, process_request=reject) as server:
            port.append(next(iter(server.sockets)).getsockname()[1])
            stop.append(asyncio.get_running_loop())
            ready.set()
            await server.serve_forever()

    thread = threading.Thread(target=lambda: asyncio.run(_cancellable(main())), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield port[0]
    loop = stop[0]
    loop.call_soon_threadsafe(lambda: [t.cancel() for t in asyncio.all_tasks(loop)])
    thread.join(10)


async def _cancellable(coro: Awaitable[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await coro


def test_rejected_handshake_is_one_line_and_exit_3(forbidden_server: int) -> None:
    proc = run_cli("hold", f"ws://127.0.0.1:{forbidden_server}/", "--duration", "1", "--json")
    assert proc.returncode == 3
    assert (
        proc.stderr.strip() == f"natprobe: 127.0.0.1:{forbidden_server} rejected the WebSocket handshake with HTTP 403"
    )
    assert proc.stdout == ""
