"""The cooperating natprobe server: its listeners and the TCP adapter.

Each connection is a sans-I/O :class:`~probe.core.server_session.Session`
in the registry of core/server_registry.py; this module puts them on the
event loop. The TCP adapter is an ``asyncio.Protocol`` with loop timers
rather than a task per connection, so an idle session costs a few kilobytes
and no scheduler work.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from probe import __version__
from probe.core.keepalive import KeepaliveSettings
from probe.core.protocol import LineBuffer, ProtocolError
from probe.core.server_registry import Registry, ServerConfig
from probe.core.server_session import ABORT_CODES, Session, Unacked
from probe.errors import UsageError
from probe.net.sockopts import apply_keepalive, set_user_timeout, tcp_info
from probe.net.udp_server import UdpListener, bind_udp, send_spaced

__all__ = [
    "ABORT_CODES",
    "ProbeServer",
    "ServerConfig",
    "Session",
    "ack_now",
    "end_reason",
    "keepalive_on",
    "unacked",
]

#: Unanswered keepalive probes before the kernel gives a design connection up.
DESIGN_KEEPALIVE_COUNT = 5


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def ack_now(sock: Any) -> None:
    """Acknowledge received data at once instead of up to 40 ms later.

    The ACK is the last packet a middlebox sees before the idle period, and
    the idle this server reports is counted from the data it received: a
    delayed ACK would make every reported idle look longer than the path's.
    Linux clears TCP_QUICKACK by itself, so it is set after each read.
    """
    if _QUICKACK is not None and sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)


class _TcpSession(asyncio.Protocol):
    """Newline-delimited JSON over a TCP stream."""

    __slots__ = ("_sock", "_timer", "buffer", "server", "session", "transport")

    def __init__(self, server: ProbeServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.buffer = LineBuffer()
        self._timer: asyncio.TimerHandle | None = None
        self._sock: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._sock = transport.get_extra_info("socket")
        set_user_timeout(self._sock, self.server.config.user_timeout_s)
        peer = transport.get_extra_info("peername") or ("?", 0)
        session = Session(self.server, (str(peer[0]), int(peer[1])), self)
        self.session = session
        refusal = self.server.admit(session)
        if refusal is not None:
            session.fail("busy", refusal)
            return
        self._timer = asyncio.get_running_loop().call_later(self.server.config.hello_timeout_s, self._hello_timeout)

    def _hello_timeout(self) -> None:
        self._timer = None
        if self.session is not None:
            self.session.hello_overdue(pending=bool(self.buffer.pending))

    def _partial_timeout(self) -> None:
        self._timer = None
        if self.session is not None:
            self.session.fail("timeout", "incomplete line")

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is None or session.closed:
            return
        ack_now(self._sock)
        try:
            lines = self.buffer.feed(data)
        except ProtocolError as exc:
            session.fail(exc.code, exc.message)
            return
        for line in lines:
            session.on_message(line)
            if session.closed:
                return
            if session.greeted and self.server.config.hang_after_welcome:
                self._hang()
                return
        if session.parked and (session.spoke or self.buffer.pending):
            # It said more than a heartbeat: one more hello deadline.
            session.unpark()
            self._timer = asyncio.get_running_loop().call_later(self.server.config.hello_timeout_s, self._hello_timeout)
        self._arm_partial_timer(session)

    def _arm_partial_timer(self, session: Session) -> None:
        if not session.greeted:
            return  # the hello timer is still running
        if self.buffer.pending:
            if self._timer is None:
                timeout = self.server.config.partial_line_timeout_s
                self._timer = asyncio.get_running_loop().call_later(timeout, self._partial_timeout)
        elif self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _hang(self) -> None:
        # The application stops: nothing more is read (the kernel buffers and
        # acknowledges what comes), no timer of this connection fires again.
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.transport is not None:
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        return False

    def send_line(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def close_link(self, code: str = "", message: str = "") -> None:
        if self.transport is not None:
            if code in ABORT_CODES:
                self.transport.abort()
            else:
                self.transport.close()

    def unacked(self) -> Unacked | None:
        return unacked(self._sock)

    def set_keepalive(self, seconds: int) -> bool:
        return keepalive_on(self._sock, seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.session is not None:
            self.session.end_reason = end_reason(exc)
            self.session.on_closed()
            self.session = None
        self.transport = None
        self._sock = None


def keepalive_on(sock: Any, seconds: int) -> bool:
    """The server's kernel keepalive on one session (a design connection asked for it)."""
    if sock is None:
        return False
    try:
        apply_keepalive(sock, KeepaliveSettings(seconds, seconds, DESIGN_KEEPALIVE_COUNT))
    except (OSError, UsageError):  # UnsupportedOption is a UsageError
        return False
    return True


def unacked(sock: Any) -> Unacked | None:
    """What TCP_INFO says of data the client has not acknowledged, for a session's link."""
    info = tcp_info(sock) if sock is not None else None
    if info is None:
        return None
    return Unacked(info["unacked"], info["total_retrans"], info["rto_us"] / 1e6, info["last_data_sent_ms"] / 1e3)


def end_reason(exc: BaseException | None) -> str:
    """How a transport ended, in the words of ``push_unacked`` reports."""
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, TimeoutError) or (isinstance(exc, OSError) and exc.errno == errno.ETIMEDOUT):
        return "timeout"
    return "closed"


class Listener(Protocol):
    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


class ProbeServer(Registry):
    """The registry (core/server_registry.py) on the event loop, and its listeners."""

    def __init__(self, config: ServerConfig | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(config, clock, f"natprobe {__version__}")
        self._servers: list[Listener] = []
        self.addresses: list[tuple[str, int]] = []

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback, *args)

    def send_udp(self, sends: Sequence[Any]) -> None:
        send_spaced(list(sends))

    async def listen_tcp(self, host: str, port: int) -> tuple[str, int]:
        """Start a TCP listener; return the address it bound (port 0 picks one)."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _TcpSession(self), host, port, reuse_address=True, backlog=4096)
        self._servers.append(server)
        bound = server.sockets[0].getsockname()
        address = (str(bound[0]), int(bound[1]))
        self.addresses.append(address)
        return address

    async def listen_udp(self, host: str, port: int) -> tuple[str, int]:
        """Start a UDP listener; return the address it bound (port 0 picks one)."""
        sock = bind_udp(host, port)
        listener = UdpListener(sock, self.udp, self.deliver, self.clock)
        self._servers.append(listener)
        bound = sock.getsockname()
        address = (str(bound[0]), int(bound[1]))
        self.udp_addresses.append(address)
        return address

    def add_listener(self, server: Listener, address: tuple[str, int]) -> None:
        self._servers.append(server)
        self.addresses.append(address)

    async def shutdown(self, grace_s: float = 2.0) -> None:
        """Tell every session why, close them, and stop listening."""
        for session in list(self.live):
            session.fail("shutdown", "server is shutting down", logged=True)
        for server in self._servers:
            server.close()
        waits = [server.wait_closed() for server in self._servers]
        if waits:
            try:
                async with asyncio.timeout(grace_s):
                    await asyncio.gather(*waits)
            except TimeoutError:
                pass
