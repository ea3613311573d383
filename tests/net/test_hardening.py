"""The server against hostile input, floods and shutdown; property-based fuzzing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import socket
import ssl
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe.core.protocol import LineBuffer, ProtocolError, decode, validate_client
from probe.core.server_registry import RateLimitedLog
from probe.net.server import ProbeServer, ServerConfig
from tests.net.helpers import Client, run_with_server


def _tls_client_hello() -> bytes:
    """The real first flight of a TLS client that mistook the port."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="natprobe.test")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


TLS_CLIENT_HELLO = _tls_client_hello()
HOSTILE = {
    "binary garbage": (b"\x00\x01\x02\xff\xfe\xfd\n", "bad_utf8"),
    "invalid utf-8": (b'{"op":"hello","v":1,"x":"\xc3\x28"}\n', "bad_utf8"),
    "invalid json": (b'{"op":"hello",\n', "bad_json"),
    "not an object": (b'"hello"\n', "bad_message"),
    "deep nesting": (b"[" * 2000 + b"]" * 2000 + b"\n", "bad_json"),
    "unknown op": (b'{"op":"teleport"}\n', "unknown_op"),
    "wrong version": (b'{"op":"hello","v":0}\n', "bad_version"),
    "push_after before hello": (b'{"op":"push_after","id":"a","idle_s":1}\n', "bad_state"),
    "http request": (b"GET / HTTP/1.1\r\nHost: example\r\n\r\n", "bad_json"),
    "tls client hello": (TLS_CLIENT_HELLO + b"\n", "bad_utf8|bad_json"),
    "huge line": (b"x" * 5000, "too_long"),
}
AFTER_HELLO = {
    "negative idle": ({"op": "push_after", "id": "a", "idle_s": -1}, "bad_idle"),
    "huge idle": ({"op": "push_after", "id": "a", "idle_s": 1e300}, "bad_idle"),
    "string idle": ({"op": "push_after", "id": "a", "idle_s": "10"}, "bad_idle"),
    "id of the wrong type": ({"op": "push_after", "id": ["a"], "idle_s": 1}, "bad_id"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_gets_an_error_and_a_close(name: str) -> None:
    payload, code = HOSTILE[name]

    async def body(server: ProbeServer, port: int) -> None:
        client = await Client.connect(port)
        client.send(payload)
        reply = await client.recv()
        assert reply["op"] == "error" and reply["code"] in code.split("|")
        assert await client.closed()
        assert not server.live

    run_with_server(body)


@pytest.mark.parametrize("name", sorted(AFTER_HELLO))
def test_hostile_fields_after_hello(name: str) -> None:
    message, code = AFTER_HELLO[name]

    async def body(server: ProbeServer, port: int) -> None:
        client = await Client.connect(port)
        await client.hello()
        client.send(message)
        assert (await client.recv())["code"] == code
        assert await client.closed()

    run_with_server(body)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_idle_literals_are_rejected(literal: bytes) -> None:
    async def body(server: ProbeServer, port: int) -> None:
        client = await Client.connect(port)
        await client.hello()
        client.send(b'{"op":"push_after","id":"a","idle_s":' + literal + b"}\n")
        assert (await client.recv())["code"] == "bad_json"

    run_with_server(body)


def test_a_ten_megabyte_line_is_cut_off_early() -> None:
    async def body(server: ProbeServer, port: int) -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        chunk = b"y" * 65536
        sent = 0
        # The server refuses the line once 4 KiB arrived and closes; it never
        # buffers the 10 MB, so sending them all must fail.
        with contextlib.suppress(ConnectionError):
            while sent < 10 * 1024 * 1024:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
        writer.transport.abort()
        assert sent < 10 * 1024 * 1024, "the server read all 10 MB of one line"
        assert not server.live
        # (Its too_long reply is lost to the reset that the unread bytes cause:
        # tests/net/test_hardening.py "huge line" checks the reply itself.)

    run_with_server(body)


def test_a_line_just_over_the_limit_gets_too_long_and_a_close() -> None:
    async def body(server: ProbeServer, port: int) -> None:
        client = await Client.connect(port)
        client.send(b"x" * 4096)  # no newline: the limit is reached while waiting for one
        reply = await client.recv()
        assert reply == {"op": "error", "code": "too_long", "message": "line exceeds 4096 bytes"}
        assert await client.closed()

    run_with_server(body)


def test_rejection_log_is_rate_limited_on_a_simulated_clock() -> None:
    now = [0.0]
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("natprobe.server")
    logger.addHandler(handler)
    try:
        limiter = RateLimitedLog(5.0, lambda: now[0])
        for _ in range(1000):  # a flood within one instant
            limiter.warn("rejected x")
        assert len(records) == 5
        now[0] = 1.0  # one second later: five more allowed, the first says how many were dropped
        limiter.warn("rejected y")
        assert len(records) == 6 and "995 similar lines suppressed" in records[-1]
    finally:
        logger.removeHandler(handler)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_parser_fuzz_only_raises_protocol_errors(data: bytes) -> None:
    buf = LineBuffer()
    try:
        for line in buf.feed(data + b"\n"):
            validate_client(decode(line), 7800)
    except ProtocolError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["op", "v", "id", "idle_s", "session", "token"]), json_values, max_size=5))
def test_structured_fuzz_only_raises_protocol_errors(message: dict[str, Any]) -> None:
    try:
        validated = validate_client(decode(json.dumps(message)), 7800)
    except ProtocolError:
        return
    idle = getattr(validated, "idle_s", 0.0)
    assert math.isfinite(idle) and 0 <= idle <= 7800


#: Every code the server may answer garbage with (docs/protocol.md).
KNOWN_CODES = frozenset(
    {"bad_utf8", "bad_json", "bad_message", "too_long", "bad_version", "bad_state", "bad_id", "bad_idle",
     "unknown_op", "bad_token", "bad_run", "timeout", "too_many_rounds"}
)  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=4))
def test_live_server_survives_fuzzed_streams(chunks: list[bytes]) -> None:
    async def body(server: ProbeServer, port: int) -> None:
        # A server bug inside data_received never reaches the client: asyncio
        # hands it to the loop's exception handler. Record every call.
        loop = asyncio.get_running_loop()
        errors: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for chunk in chunks:
            writer.write(chunk)
        writer.write(b"\n")
        await writer.drain()
        # Whatever it was, the server answers with a known error code and
        # closes, or keeps waiting for more with the connection open.
        try:
            reply = await asyncio.wait_for(reader.read(8192), 0.3)
        except TimeoutError:
            reply = None
        if reply is None:
            assert not reader.at_eof() and len(server.live) == 1
        else:
            assert reply, "closed without saying why"
            for line in reply.splitlines():
                message = json.loads(line)
                assert message["op"] in ("error", "beat_ack"), message
                if message["op"] == "error":
                    assert message["code"] in KNOWN_CODES, message
        writer.transport.abort()
        fresh = await Client.connect(port)
        assert (await fresh.hello())["op"] == "welcome"
        fresh.writer.transport.abort()
        # Both sessions are gone once their connections are: none leak.
        for _ in range(200):
            if not server.live:
                break
            await asyncio.sleep(0.01)
        assert not server.live and not server.per_ip and not server.sessions
        assert errors == []

    run_with_server(body, hello_timeout_s=1.0)


def test_server_process_tells_sessions_on_sigterm_and_exits_0() -> None:
    from tests.conftest import port_of, scaled, start_process

    server = start_process("server", "--tcp", "127.0.0.1:0", ready="listening on")
    with socket.create_connection(("127.0.0.1", port_of(server.ready_line)), timeout=scaled(5)) as sock:
        sock.sendall(b'{"op":"hello","v":1}\n')
        stream = sock.makefile("rb")  # reads bounded by the socket's timeout
        assert json.loads(stream.readline())["op"] == "welcome"
        server.proc.terminate()
        assert json.loads(stream.readline())["code"] == "shutdown"
        assert stream.readline() == b""  # then closed
    assert server.proc.wait(timeout=scaled(5)) == 0
    server.stop()


def test_websocket_sessions_get_close_1001_on_shutdown() -> None:
    from websockets.asyncio.client import connect

    from probe.net.ws_server import listen_ws

    async def body() -> None:
        server = ProbeServer(ServerConfig())
        host, port = await listen_ws(server, "127.0.0.1", 0)
        async with connect(f"ws://{host}:{port}/", ping_interval=None, proxy=None) as ws:
            await ws.send('{"op":"hello","v":1}')
            await ws.recv()
            await server.shutdown()
            assert json.loads(await ws.recv())["code"] == "shutdown"
            await asyncio.wait_for(ws.wait_closed(), 5)
            assert ws.close_code == 1001

    asyncio.run(body())


def test_closed_sessions_are_freed_by_reference_counting_alone() -> None:
    # The server freezes long-lived objects out of the cyclic GC's reach
    # (probe/run/serve.py), so a closed session must not need the GC.
    import gc
    import weakref

    refs: list[weakref.ref[Any]] = []

    async def body(server: ProbeServer, port: int) -> None:
        clients = [await Client.connect(port) for _ in range(50)]
        for client in clients:
            await client.hello()
        refs.extend(weakref.ref(s) for s in server.live)
        assert len(refs) == 50
        await Client.close_all()
        for _ in range(20):  # until the server has seen every close
            if not server.live:
                break
            await asyncio.sleep(0.05)
        assert not server.live

    gc.disable()
    try:
        run_with_server(body)
        assert all(ref() is None for ref in refs)
    finally:
        gc.enable()
