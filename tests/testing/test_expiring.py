"""The test kit's userspace NATs as context managers, on real loopback sockets.

Timeline of the expiry tests: one exchange at 0, then silence; the NAT
forgets the flow at T = 0.4 s (scaled), which the test waits for as an
"expired" event, never by sleeping.
"""

from __future__ import annotations

import asyncio
import math
import socket
import threading

import pytest
import websockets

from probe.testing import ExpiringNat, ExpiringUdpNat
from tests.conftest import scaled
from tests.testing.helpers import refused_port, tcp_echo, udp_echo

T = scaled(0.4)
WAIT = scaled(5)


def exchange(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    return sock.recv(100)


def natprobe_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("natprobe-")]


def test_a_flow_passes_then_expires_and_in_drop_mode_what_follows_vanishes() -> None:
    with tcp_echo() as upstream, ExpiringNat(upstream.server_address, idle_timeout=T) as nat:
        with socket.create_connection(nat.address, timeout=WAIT) as sock:
            assert exchange(sock, b"hello") == b"hello"
            expired = nat.wait_for("expired", WAIT)
            opened = nat.events[0]
            assert (opened.kind, opened.flow) == ("opened", 1) and opened.peer == sock.getsockname()
            assert expired.at - opened.at >= T
            sock.sendall(b"lost")
            dropped = nat.wait_for("dropped", WAIT)
            sock.settimeout(scaled(0.3))
            with pytest.raises(TimeoutError):
                sock.recv(100)
        assert dropped.nbytes == 4 and dropped.flow == 1
        with upstream.lock:
            assert upstream.received == [b"hello"]
    assert [e.kind for e in nat.events] == ["opened", "expired", "dropped"]


def test_reset_mode_resets_the_clients_socket() -> None:
    with (
        tcp_echo() as upstream,
        ExpiringNat(upstream.server_address, idle_timeout=T, mode="reset") as nat,
        socket.create_connection(nat.address, timeout=WAIT) as sock,
    ):
        assert exchange(sock, b"x") == b"x"
        nat.wait_for("reset", WAIT)
        with pytest.raises(ConnectionResetError):
            sock.recv(100)
    assert [e.kind for e in nat.events] == ["opened", "expired", "reset"]


def test_close_mode_sends_the_client_a_fin() -> None:
    with (
        tcp_echo() as upstream,
        ExpiringNat(upstream.server_address, idle_timeout=T, mode="close") as nat,
        socket.create_connection(nat.address, timeout=WAIT) as sock,
    ):
        assert exchange(sock, b"x") == b"x"
        nat.wait_for("closed", WAIT)
        assert sock.recv(100) == b""
    assert [e.kind for e in nat.events] == ["opened", "expired", "closed"]


def test_data_before_the_timeout_keeps_the_flow() -> None:
    # Exchanges every T/4 for 1.5 times the timeout (here 4 T, so that a
    # loaded machine's stall of a few hundred ms cannot fake an idle): the
    # flow is never idle for its timeout.
    timeout = 4 * T
    with tcp_echo() as upstream, ExpiringNat(upstream.server_address, idle_timeout=timeout) as nat:
        with socket.create_connection(nat.address, timeout=WAIT) as sock:
            for n in range(24):
                assert exchange(sock, b"%d" % n) == b"%d" % n
                with pytest.raises(TimeoutError):
                    nat.wait_for("expired", T / 4)
        assert [e.kind for e in nat.events] == ["opened"]


def test_forget_all_forgets_every_live_flow_now() -> None:
    with tcp_echo() as upstream, ExpiringNat(upstream.server_address, idle_timeout=600) as nat:
        socks = [socket.create_connection(nat.address, timeout=WAIT) for _ in range(3)]
        try:
            for sock in socks:
                assert exchange(sock, b"x") == b"x"
            assert nat.forget_all() == 3
            assert nat.forget_all() == 0
            assert sorted(e.flow for e in nat.events if e.kind == "expired") == [1, 2, 3]
        finally:
            for sock in socks:
                sock.close()


def test_a_shorter_timeout_applies_to_live_flows_at_once() -> None:
    with (
        tcp_echo() as upstream,
        ExpiringNat(upstream.server_address, idle_timeout=600) as nat,
        socket.create_connection(nat.address, timeout=WAIT) as sock,
    ):
        assert exchange(sock, b"x") == b"x"
        nat.set_idle_timeout(T)
        assert nat.idle_timeout == T
        expired = nat.wait_for("expired", WAIT)
    assert expired.at - nat.events[0].at < 600


def test_a_websocket_passes_through_and_url_names_the_nat() -> None:
    async def body() -> str:
        async def echo(ws: websockets.ServerConnection) -> None:
            async for message in ws:
                await ws.send(message)

        async with websockets.serve(echo, "127.0.0.1", 0, ping_interval=None) as server:
            upstream = server.sockets[0].getsockname()[:2]
            with ExpiringNat(upstream, idle_timeout=60, check_upstream=False) as nat:
                assert nat.url("ws", "chat") == f"ws://127.0.0.1:{nat.port}/chat"
                async with websockets.connect(nat.url("ws", "/chat"), ping_interval=None) as ws:
                    await ws.send("hi")
                    return str(await asyncio.wait_for(ws.recv(), WAIT))

    assert asyncio.run(body()) == "hi"


@pytest.mark.parametrize("timeout", [0, -1, math.nan, math.inf, True, "5"])
def test_a_timeout_that_is_not_a_positive_number_is_refused(timeout: object) -> None:
    with pytest.raises(ValueError, match="idle_timeout must be a positive number of seconds"):
        ExpiringNat(("127.0.0.1", 9), idle_timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="idle_timeout must be a positive number of seconds"):
        ExpiringUdpNat(("127.0.0.1", 9), idle_timeout=timeout)  # type: ignore[arg-type]


def test_an_unknown_mode_and_a_bad_upstream_are_refused() -> None:
    with pytest.raises(ValueError, match="mode must be one of 'drop', 'reset', 'close', not 'gone'"):
        ExpiringNat(("127.0.0.1", 9), mode="gone")
    with pytest.raises(ValueError, match=r"upstream must be a \(host, port\) tuple"):
        ExpiringNat("127.0.0.1:9")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="port must be a whole number from 1 to 65535"):
        ExpiringNat(("127.0.0.1", 70000))


def test_an_upstream_that_refuses_is_one_clear_error_at_start_and_leaves_nothing_running() -> None:
    sock, port = refused_port()
    with sock, pytest.raises(ConnectionError, match=rf"upstream 127.0.0.1:{port} does not accept connections"):
        ExpiringNat(("127.0.0.1", port)).start()
    assert natprobe_threads() == []


def test_closing_leaves_no_thread_and_no_open_file() -> None:
    import psutil

    me = psutil.Process()
    with tcp_echo() as upstream:
        before = me.num_fds()
        with ExpiringNat(upstream.server_address, idle_timeout=T) as nat:
            sock = socket.create_connection(nat.address, timeout=WAIT)
            assert exchange(sock, b"x") == b"x"
            assert natprobe_threads() == ["natprobe-expiring-nat"]
        sock.close()
        nat.close()  # twice is fine
        assert natprobe_threads() == []
        assert me.num_fds() == before


def test_a_udp_binding_expires_and_the_next_datagram_gets_a_new_port() -> None:
    with udp_echo() as upstream, ExpiringUdpNat(upstream.server_address, idle_timeout=T) as nat:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(WAIT)
            sock.sendto(b"one", nat.address)
            assert sock.recv(100) == b"one"
            nat.wait_for("expired", WAIT)
            sock.sendto(b"two", nat.address)
            assert sock.recv(100) == b"two"
            nat.wait_for("opened", WAIT, count=2)
        with upstream.lock:
            first, second = upstream.sources
    assert first != second
    assert [e.kind for e in nat.events] == ["opened", "expired", "opened"]


def test_without_inbound_refresh_only_the_clients_datagrams_keep_a_binding() -> None:
    # The upstream answers every datagram; with inbound refresh off that
    # answer does not count, so the binding expires T after the client's send.
    for refresh in (True, False):
        with udp_echo() as upstream, ExpiringUdpNat(upstream.server_address, T, inbound_refresh=refresh) as nat:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(WAIT)
                sock.sendto(b"x", nat.address)
                assert sock.recv(100) == b"x"
                expired = nat.wait_for("expired", WAIT)
            assert nat.inbound_refresh is refresh
            assert expired.at - nat.events[0].at >= T


def test_udp_forget_all_and_new_timers() -> None:
    with (
        udp_echo() as upstream,
        ExpiringUdpNat(upstream.server_address, idle_timeout=600) as nat,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
    ):
        sock.settimeout(WAIT)
        sock.sendto(b"x", nat.address)
        assert sock.recv(100) == b"x"
        assert nat.forget_all() == 1
        sock.sendto(b"y", nat.address)
        assert sock.recv(100) == b"y"
        nat.set_idle_timeout(T)
        assert nat.idle_timeout == T
        nat.wait_for("expired", WAIT, count=2)
    assert natprobe_threads() == []


def test_the_set_up_check_does_not_use_up_a_server_that_accepts_once() -> None:
    # The kernel's socket table tells that the upstream listens; no
    # connection is made, so the first one the server accepts is the client's.
    import select

    listener = socket.create_server(("127.0.0.1", 0))
    with listener, ExpiringNat(listener.getsockname(), idle_timeout=60) as nat:
        assert select.select([listener], [], [], scaled(0.2))[0] == []
        with socket.create_connection(nat.address, timeout=WAIT) as sock:
            sock.sendall(b"first")
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(WAIT)
                assert conn.recv(100) == b"first"
