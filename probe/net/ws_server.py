"""The natprobe protocol over WebSocket text messages, on any path.

Each message is one protocol object (no newline). The session logic is the
same :class:`~probe.core.server_session.Session` as for TCP. WebSocket pings are
answered with pongs by the library; automatic server pings are off, since a
server ping is traffic that would keep the path alive by itself.
"""

from __future__ import annotations

import asyncio
import contextlib

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from probe.core.protocol import MAX_LINE
from probe.core.server_session import Unacked
from probe.net.server import ABORT_CODES, ProbeServer, Session, ack_now, end_reason, keepalive_on, unacked
from probe.net.sockopts import set_user_timeout

#: The handshake's Server header: tells a WebSocket client (hold) whom it talks to.
SERVER_HEADER = "natprobe"
#: 1001 "going away" when the server shuts down, 1008 "policy violation" for
#: a client that broke the protocol.
CLOSE_SHUTDOWN = 1001
CLOSE_VIOLATION = 1008


#: Close reasons are at most 123 bytes of UTF-8 (RFC 6455 5.5.1).
_MAX_REASON = 123


def close_reason(code: str, message: str) -> str:
    """``natprobe code: message`` cut to what a close frame can carry; the
    prefix tells a client (``hold``) that the far end is a natprobe server."""
    text = f"natprobe {code}: {message}" if message else f"natprobe {code}"
    data = text.encode("utf-8")[:_MAX_REASON]
    return data.decode("utf-8", errors="ignore")


class _WsSession:
    """Adapts a Session's synchronous send/close to an async WebSocket."""

    def __init__(self, server: ProbeServer, ws: ServerConnection) -> None:
        self.ws = ws
        #: Messages to send, then a (close code, reason) pair, or None to abort.
        self.outbox: asyncio.Queue[str | tuple[int, str] | None] = asyncio.Queue()
        peer = ws.remote_address or ("?", 0)
        self._sock = ws.transport.get_extra_info("socket")
        set_user_timeout(self._sock, server.config.user_timeout_s)
        self.session = Session(server, (str(peer[0]), int(peer[1])), self)

    def send_line(self, data: bytes) -> None:
        # Session speaks in lines; a WebSocket message carries one object.
        self.outbox.put_nowait(data.decode("utf-8").rstrip("\n"))

    def close_link(self, code: str, message: str = "") -> None:
        if code in ABORT_CODES:
            # Behind a forgotten mapping a closing handshake would never
            # finish: drop the connection at once.
            self.ws.transport.abort()
            self.outbox.put_nowait(None)
            return
        ws_code = CLOSE_SHUTDOWN if code == "shutdown" else CLOSE_VIOLATION
        self.outbox.put_nowait((ws_code, close_reason(code, message)))

    def unacked(self) -> Unacked | None:
        return unacked(self._sock)

    def set_keepalive(self, seconds: int) -> bool:
        return keepalive_on(self._sock, seconds)

    async def write(self) -> None:
        """Send queued messages in order; a close code ends the connection."""
        while True:
            item = await self.outbox.get()
            if item is None:
                return
            if isinstance(item, tuple):
                await self.ws.close(*item)
                return
            await self.ws.send(item)


async def _handle(server: ProbeServer, ws: ServerConnection) -> None:
    state = _WsSession(server, ws)
    session = state.session
    writer = asyncio.create_task(state.write())
    refusal = server.admit(session)
    if refusal is not None:
        session.fail("busy", refusal)
    # WebSocket pings are answered by the library and are not messages: a hold
    # with ping heartbeats stays quiet here, and is parked at the deadline.
    timer = asyncio.get_running_loop().call_later(server.config.hello_timeout_s, session.hello_overdue)
    try:
        sock = ws.transport.get_extra_info("socket")
        async for message in ws:
            ack_now(sock)
            session.on_message(message.encode("utf-8") if isinstance(message, str) else message)
            if session.closed:
                break
        # Let queued messages (an error, a close code) go out.
        await asyncio.wait({writer}, timeout=2.0)
    except ConnectionClosed as exc:
        session.end_reason = end_reason(exc.__cause__)
    finally:
        timer.cancel()
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await writer
        session.on_closed()


async def listen_ws(server: ProbeServer, host: str, port: int) -> tuple[str, int]:
    """Serve WebSocket clients on HOST:PORT (any path); return the bound address."""

    async def handler(ws: ServerConnection) -> None:
        await _handle(server, ws)

    ws_server = await serve(
        handler, host, port, ping_interval=None, max_size=MAX_LINE, compression=None, server_header=SERVER_HEADER
    )
    bound = next(iter(ws_server.sockets)).getsockname()
    address = (str(bound[0]), int(bound[1]))
    server.add_listener(ws_server, address)
    return address
