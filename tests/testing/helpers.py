"""Upstreams for the test kit's tests: echo servers on loopback, on threads."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar


class _Echo(socketserver.BaseRequestHandler):
    server: _TcpServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            with self.server.lock:
                self.server.received.append(data)
            try:
                sock.sendall(data)
            except OSError:
                return


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.lock = threading.Lock()
        self.received: list[bytes] = []


S = TypeVar("S", bound=socketserver.BaseServer)


@contextmanager
def _serving(server: S) -> Iterator[S]:
    """``server`` answering on a thread of its own until the block ends."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def tcp_echo() -> AbstractContextManager[_TcpServer]:
    """A TCP echo server that records what it received."""
    return _serving(_TcpServer())


class _UdpEcho(socketserver.BaseRequestHandler):
    server: _UdpServer

    def handle(self) -> None:
        data, sock = self.request
        with self.server.lock:
            self.server.sources.append(self.client_address)
        sock.sendto(data, self.client_address)


class _UdpServer(socketserver.UDPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _UdpEcho)
        self.lock = threading.Lock()
        self.sources: list[tuple[str, int]] = []


def udp_echo() -> AbstractContextManager[_UdpServer]:
    """A UDP echo server that records the address each datagram came from."""
    return _serving(_UdpServer())


def refused_port() -> tuple[socket.socket, int]:
    """A port that refuses: bound, never listening (kept bound, so nothing else takes it)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]
