"""The server over real TCP on loopback."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from probe.net.server import ProbeServer
from tests.conftest import scaled
from tests.net.helpers import Client, run_with_server


def test_welcome_reports_the_observed_address_and_a_session() -> None:
    async def body(server: ProbeServer, port: int) -> None:
        client = await Client.connect(port)
        welcome = await client.hello()
        local = client.writer.get_extra_info("sockname")
        assert welcome["op"] == "welcome" and welcome["v"] == 1
        assert welcome["observed"] == f"{local[0]}:{local[1]}"
        assert welcome["server"].startswith("natprobe ")
        assert len(welcome["session"]) >= 16

    run_with_server(body)


def test_push_comes_after_the_idle_period_and_rounds_repeat() -> None:
    async def body(server: ProbeServer, port: int) -> None:
        client = await Client.connect(port)
        await client.hello()
        for n in range(2):
            sent = time.monotonic()
            client.send({"op": "push_after", "id": f"r{n}", "idle_s": 0.3})
            push = await client.recv()
            waited = time.monotonic() - sent
            assert push["op"] == "push" and push["id"] == f"r{n}"
            # Never early; late only by the event loop's lag on a busy machine.
            assert 0.3 <= push["idle_s"] < 0.8
            assert 0.29 <= waited < 1.0
            client.send({"op": "ack", "id": f"r{n}"})

    run_with_server(body)


def test_push_now_from_a_control_connection_reports_the_idle_it_ended() -> None:
    async def body(server: ProbeServer, port: int) -> None:
        idle = await Client.connect(port)
        session = (await idle.hello())["session"]
        idle.send({"op": "push_after", "id": "backstop", "idle_s": 60})
        control = await Client.connect(port)
        welcome = await control.hello()
        control.send({"op": "ping", "id": "x"})
        # A ping with an id is answered with the address seen now.
        assert await control.recv() == {"op": "pong", "id": "x", "observed": welcome["observed"]}
        control.send({"op": "push_now", "id": "p1", "session": session})
        pushed = await control.recv()
        assert pushed["sent"] is True and pushed["session"] == session and pushed["idle_s"] >= 0
        push = await idle.recv()
        assert push["op"] == "push" and push["id"] == "p1"
        # The backstop was cancelled: no push is pending on the idle session.
        target = server.sessions[session]
        assert target._push_timer is None and target._push_id is None
        control.send({"op": "push_now", "id": "p2", "session": "no-such-session"})
        assert await control.recv() == {
            "op": "pushed",
            "id": "p2",
            "session": "no-such-session",
            "sent": False,
            "reason": "unknown_session",
        }

    run_with_server(body)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"\x00\xff\xfe garbage\n", "bad_utf8"),
        (b"{nope\n", "bad_json"),
        (b"[1]\n", "bad_message"),
        (b'{"op":"hello","v":9}\n', "bad_version"),
        (b'{"op":"push_after","id":"a","idle_s":1}\n', "bad_state"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad_json"),
    ],
)
def test_bad_input_gets_an_error_and_a_close(payload: bytes, code: str) -> None:
    async def body(server: ProbeServer, port: int) -> None:
        client = await Client.connect(port)
        client.send(payload)
        reply = await client.recv()
        assert reply["op"] == "error" and reply["code"] == code
        assert await client.closed()

    run_with_server(body)


@pytest.mark.parametrize("idle", [-1, "5", 1e12, True])
def test_bad_idle_values_are_rejected(idle: object) -> None:
    async def body(server: ProbeServer, port: int) -> None:
        client = await Client.connect(port)
        await client.hello()
        client.send({"op": "push_after", "id": "a", "idle_s": idle})
        reply = await client.recv()
        assert reply["op"] == "error" and reply["code"] == "bad_idle"

    run_with_server(body, max_idle_s=7800.0)


def test_token_is_required_when_configured() -> None:
    async def body(server: ProbeServer, port: int) -> None:
        wrong = await Client.connect(port)
        assert (await wrong.hello(token="nope"))["code"] == "unauthorized"
        right = await Client.connect(port)
        assert (await right.hello(token="s3cret"))["op"] == "welcome"

    run_with_server(body, token="s3cret")


def test_silent_client_past_the_parking_quota_and_half_line_are_closed() -> None:
    async def body(server: ProbeServer, port: int) -> None:
        # No place to park a silent connection (tests/run/test_hold_natprobe.py
        # covers parking): the hello deadline closes it, saying why.
        silent = await Client.connect(port)
        assert await silent.recv(wait_s=scaled(3)) == {"op": "error", "code": "timeout", "message": "no hello in time"}
        half = await Client.connect(port)
        await half.hello()
        half.send(b'{"op":"pi')
        assert (await half.recv(wait_s=scaled(3)))["code"] == "timeout"

    run_with_server(body, hello_timeout_s=0.3, partial_line_timeout_s=0.3, max_parked=0)


def test_per_ip_limit_refuses_with_busy() -> None:
    async def body(server: ProbeServer, port: int) -> None:
        first = await Client.connect(port)
        await first.hello()
        second = await Client.connect(port)
        assert (await second.recv())["code"] == "busy"

    run_with_server(body, max_per_ip=1)


def test_shutdown_tells_sessions_why() -> None:
    async def body() -> None:
        server = ProbeServer()
        _, port = await server.listen_tcp("127.0.0.1", 0)
        client = await Client.connect(port)
        await client.hello()
        await server.shutdown()
        assert (await client.recv())["code"] == "shutdown"
        assert not server.live
        client.writer.close()
        await client.writer.wait_closed()

    asyncio.run(body())


def test_a_runs_test_connections_are_freed_when_its_control_connection_ends() -> None:
    async def body(server: ProbeServer, port: int) -> None:
        control = await Client.connect(port)
        run = (await control.hello())["session"]
        members = [await Client.connect(port) for _ in range(3)]
        for member in members:
            member.send({"op": "hello", "v": 1, "run": run})
            assert (await member.recv())["op"] == "welcome"
        other = await Client.connect(port)
        await other.hello()  # a session of no run: must survive
        assert len(server.live) == 5
        control.writer.transport.abort()
        for member in members:
            # The reason goes out first, then the connection is aborted.
            assert json.loads(await member.rest())["code"] == "run_ended"
        assert len(server.live) == 1 and not other.reader.at_eof()

    run_with_server(body)


def test_release_frees_only_a_connection_of_the_releasing_run() -> None:
    async def body(server: ProbeServer, port: int) -> None:
        control = await Client.connect(port)
        run = (await control.hello())["session"]
        member = await Client.connect(port)
        member.send({"op": "hello", "v": 1, "run": run})
        member_session = (await member.recv())["session"]
        stranger = await Client.connect(port)
        stranger_session = (await stranger.hello())["session"]
        # Another run may not release what is not its own.
        intruder = await Client.connect(port)
        await intruder.hello()
        intruder.send({"op": "release", "session": member_session})
        control.send({"op": "release", "session": stranger_session})
        control.send({"op": "ping", "id": "sync"})
        intruder.send({"op": "ping", "id": "sync"})
        assert (await control.recv())["op"] == "pong" and (await intruder.recv())["op"] == "pong"
        assert len(server.live) == 4
        control.send({"op": "release", "session": member_session})
        assert json.loads(await member.rest())["code"] == "released"
        assert len(server.live) == 3 and member_session not in server.sessions

    run_with_server(body)


def test_joining_an_unknown_run_is_refused() -> None:
    async def body(server: ProbeServer, port: int) -> None:
        client = await Client.connect(port)
        client.send({"op": "hello", "v": 1, "run": "no-such-run"})
        reply = await client.recv()
        assert reply["op"] == "error" and reply["code"] == "bad_run"

    run_with_server(body)


def test_welcome_states_the_limits_and_what_is_left_of_them() -> None:
    async def body(server: ProbeServer, port: int) -> None:
        first = await Client.connect(port)
        limits = (await first.hello())["limits"]
        assert limits == {"max_sessions": 50, "sessions_free": 49, "max_per_ip": 5, "per_ip_free": 4}
        second = await Client.connect(port)
        limits = (await second.hello())["limits"]
        assert limits["per_ip_free"] == 3 and limits["sessions_free"] == 48

    run_with_server(body, max_sessions=50, max_per_ip=5)


def test_sessions_get_the_configured_tcp_user_timeout() -> None:
    import socket

    async def body(server: ProbeServer, port: int) -> None:
        client = await Client.connect(port)
        await client.hello()
        (session,) = server.live
        # The TCP adapter's own socket: the session itself holds none.
        sock = session._link._sock  # type: ignore[union-attr]
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 7500

    run_with_server(body, user_timeout_s=7.5)


def test_the_per_address_count_goes_down_as_sessions_close() -> None:
    async def body(server: ProbeServer, port: int) -> None:
        for round_ in range(3):  # three times the limit in all, two at a time
            pair = [await Client.connect(port) for _ in range(2)]
            for client in pair:
                assert (await client.hello())["op"] == "welcome", round_
            assert server.per_ip == {"127.0.0.1": 2} and len(server.live) == 2
            for client in pair:
                client.writer.transport.abort()
            for _ in range(200):  # bounded: until the server saw both go
                if not server.live:
                    break
                await asyncio.sleep(0.01)
            assert server.per_ip == {} and not server.live and not server.sessions

    run_with_server(body, max_per_ip=2)


def test_a_refused_connection_does_not_count() -> None:
    async def body(server: ProbeServer, port: int) -> None:
        first = await Client.connect(port)
        await first.hello()
        refused = await Client.connect(port)
        assert (await refused.recv())["code"] == "busy"
        assert await refused.closed()
        assert server.per_ip == {"127.0.0.1": 1} and len(server.live) == 1

    run_with_server(body, max_per_ip=1)
