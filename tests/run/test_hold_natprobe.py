"""hold pointed at natprobe's own server: it lasts as long as the path lets it,
and every close the server makes carries a reason hold shows.

The server's hello deadline is shortened to 0.3 s here; timelines scale."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from probe.core.heartbeat import HeartbeatConfig
from probe.core.targets import Target
from probe.net.dial import Endpoint
from probe.net.server import ProbeServer, ServerConfig
from probe.net.ws_server import listen_ws
from probe.run.hold import HoldOptions, run_hold
from probe.run.hold_ws import WsHoldOptions, run_hold_ws
from tests.conftest import scaled

HELLO_S = scaled(0.3)
HOLD_S = scaled(1.2)  # four hello deadlines


def with_server(body: Callable[[ProbeServer, int, int], Awaitable[Any]], **config: Any) -> Any:
    async def main() -> Any:
        server = ProbeServer(ServerConfig(hello_timeout_s=HELLO_S, **config))
        _, tcp = await server.listen_tcp("127.0.0.1", 0)
        _, ws = await listen_ws(server, "127.0.0.1", 0)
        try:
            return await body(server, tcp, ws)
        finally:
            await server.shutdown()

    return asyncio.run(main())


def test_a_silent_tcp_hold_outlives_the_hello_deadline() -> None:
    async def body(server: ProbeServer, tcp: int, ws: int) -> dict[str, Any]:
        parked: list[int] = []

        async def sample() -> None:
            while True:
                parked.append(server.parked)
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        result = (await run_hold(HoldOptions(Endpoint(Target("tcp", "127.0.0.1", tcp)), HOLD_S))).to_json()
        sampler.cancel()
        assert max(parked) == 1  # held, silent, past the deadline
        return result

    result = with_server(body)
    assert result["ended"] == "duration" and result["lasted"] is True
    assert result["natprobe_server"] is False  # it never spoke: nothing to tell by
    assert result["alive_s"] >= HOLD_S - 0.01


def test_past_the_parking_quota_the_server_closes_with_its_reason_and_hold_says_so() -> None:
    async def body(server: ProbeServer, tcp: int, ws: int) -> dict[str, Any]:
        return (await run_hold(HoldOptions(Endpoint(Target("tcp", "127.0.0.1", tcp)), HOLD_S))).to_json()

    result = with_server(body, max_parked_per_ip=0)
    assert result["ended"] == "closed" and result["natprobe_server"] is True
    assert result["detail"] == "the far end is a natprobe server; it ended the connection: timeout: no hello in time"
    assert result["alive_s"] < HOLD_S


def test_a_connection_that_speaks_but_never_says_hello_is_not_parked() -> None:
    async def body(server: ProbeServer, tcp: int, ws: int) -> tuple[bytes, int]:
        reader, writer = await asyncio.open_connection("127.0.0.1", tcp)
        writer.write(b'{"op":')  # half a line, then nothing
        async with asyncio.timeout(scaled(5)):
            data = await reader.read()
        writer.close()
        return data, server.parked

    data, parked = with_server(body)
    assert b'"code":"timeout"' in data and parked == 0


def test_a_parked_connection_that_speaks_gets_one_more_hello_deadline() -> None:
    async def body(server: ProbeServer, tcp: int, ws: int) -> tuple[int, bytes, int]:
        reader, writer = await asyncio.open_connection("127.0.0.1", tcp)
        # Wait, bounded, for the deadline to park it: the server's own state.
        for _ in range(int(scaled(5) / 0.01)):
            if server.parked:
                break
            await asyncio.sleep(0.01)
        parked = server.parked
        writer.write(b"garbage without newline")
        async with asyncio.timeout(scaled(5)):
            data = await reader.read()
        writer.close()
        return parked, data, server.parked

    parked, data, after = with_server(body)
    assert parked == 1 and b'"code":"timeout"' in data and after == 0


def test_the_parking_quota_per_address_holds() -> None:
    async def body(server: ProbeServer, tcp: int, ws: int) -> tuple[int, list[bytes]]:
        conns = [await asyncio.open_connection("127.0.0.1", tcp) for _ in range(3)]
        closed: list[bytes] = []
        async with asyncio.timeout(scaled(5)):
            # The one over the quota is closed at the deadline, with the reason.
            done, _ = await asyncio.wait(
                {asyncio.ensure_future(r.read()) for r, _ in conns}, return_when=asyncio.FIRST_COMPLETED
            )
        closed = [task.result() for task in done]
        parked = server.parked
        for _, writer in conns:
            writer.close()
        return parked, closed

    parked, closed = with_server(body, max_parked_per_ip=2)
    assert parked == 2 and len(closed) == 1 and b'"code":"timeout"' in closed[0]


def test_a_websocket_hold_with_ping_heartbeats_lasts_and_knows_its_far_end() -> None:
    async def body(server: ProbeServer, tcp: int, ws: int) -> dict[str, Any]:
        options = WsHoldOptions(
            Endpoint(Target("ws", "127.0.0.1", ws, "/x")), HOLD_S, heartbeat=HeartbeatConfig(scaled(0.2), kind="ping")
        )
        return (await run_hold_ws(options)).to_json()

    result = with_server(body)
    assert result["ended"] == "duration" and result["natprobe_server"] is True
    assert result["heartbeat"]["answered"] >= 3 and result["heartbeat"]["missed"] == 0


def hold_with_messages(message: str) -> dict[str, Any]:
    """A WebSocket hold whose heartbeats are this message, every 0.2 s (scaled)."""

    async def body(server: ProbeServer, tcp: int, ws: int) -> dict[str, Any]:
        beat = HeartbeatConfig(scaled(0.2), kind="message")
        options = WsHoldOptions(
            Endpoint(Target("ws", "127.0.0.1", ws, "/x")), HOLD_S, heartbeat=beat, heartbeat_message=message
        )
        return (await run_hold_ws(options)).to_json()

    result: dict[str, Any] = with_server(body)
    return result


def test_a_websocket_hold_sending_non_protocol_messages_gets_the_reason_in_the_close_frame() -> None:
    result = hold_with_messages("ping")
    assert result["ended"] == "closed" and result["close_code"] == 1008
    assert result["close_reason"] == "natprobe bad_json: line is not valid JSON"
    assert result["detail"].startswith("the far end is a natprobe server; it closed with 1008: bad_json")
    assert '{"op":"beat"' in result["detail"]


def test_a_websocket_hold_with_beat_messages_is_answered_and_lasts() -> None:
    result = hold_with_messages('{"op":"beat","id":"1"}')
    assert result["ended"] == "duration", result["detail"]
    assert result["heartbeat"]["answered"] >= 3 and result["heartbeat"]["missed"] == 0


def test_a_tcp_hold_with_beat_lines_is_parked_and_a_later_hello_still_greets() -> None:
    async def body(server: ProbeServer, tcp: int, ws: int) -> tuple[list[int], dict[str, Any]]:
        reader, writer = await asyncio.open_connection("127.0.0.1", tcp)
        parked: list[int] = []
        for n in range(6):  # beats across two hello deadlines
            writer.write(b'{"op":"beat","id":"%d"}\n' % n)
            async with asyncio.timeout(scaled(5)):
                assert json.loads(await reader.readline()) == {"op": "beat_ack", "id": str(n)}
            parked.append(server.parked)
            await asyncio.sleep(HELLO_S / 2)
        writer.write(b'{"op":"hello","v":1}\n')
        async with asyncio.timeout(scaled(5)):
            welcome = json.loads(await reader.readline())
        parked.append(server.parked)
        writer.close()
        return parked, welcome

    parked, welcome = with_server(body)
    assert max(parked) == 1 and parked[-1] == 0  # parked while beating, not once greeted
    assert welcome["op"] == "welcome"
