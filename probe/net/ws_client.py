"""Client side over WebSocket: the natprobe protocol, and plain sessions.

Automatic pings are always off (``ping_interval=None``): the websockets
library would otherwise ping every 20 s and keep the path alive by itself,
hiding exactly what natprobe measures. The only pings are the ones asked for.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

from python_socks import ProxyError as SocksError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidProxyMessage,
    InvalidProxyStatus,
    InvalidStatus,
    InvalidURI,
    ProxyError,
)
from websockets.typing import Subprotocol

from probe.core.evidence import FailureMode
from probe.core.protocol import MAX_LINE, encode
from probe.core.proxy import Proxy
from probe.core.targets import Scheme, Target, format_address
from probe.core.text import printable
from probe.errors import TargetError, UsageError
from probe.net.client import (
    CONNECT_ERRORS,
    CONNECT_TIMEOUT_S,
    ConnectionEnded,
    Welcome,
    Wording,
    describe_connect_error,
    hello_exchange,
    parse_reply,
)


@dataclass(frozen=True)
class WsOptions:
    headers: list[tuple[str, str]] = field(default_factory=list)
    subprotocol: str | None = None
    cacert: str | None = None
    insecure: bool = False
    max_size: int | None = 1 << 20


def parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or any(c in name for c in " \t\r\n") or "\n" in value or "\r" in value:
        raise UsageError(f"invalid --header {text!r}: expected 'Name: value'")
    return name.strip(), value.strip()


def ssl_context(target: Target, options: WsOptions) -> ssl.SSLContext | None:
    if target.scheme is not Scheme.WSS:
        return None
    try:
        context = ssl.create_default_context(cafile=options.cacert)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load --cacert {options.cacert!r}: {exc}") from None
    if options.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _uri(target: Target) -> str:
    return f"{target.scheme}://{format_address(target.host, target.port)}{target.path}"


def describe_proxy_error(exc: BaseException, proxy: Proxy | None) -> str:
    """One line that names the proxy (never its password) and what it did."""
    name = f"the proxy {proxy}" if proxy is not None else "the proxy"
    if isinstance(exc, InvalidProxyStatus):
        status = exc.response.status_code
        if status == 407:
            return f"{name} wants authentication (HTTP 407): give user:password in --proxy"
        return f"{name} refused the tunnel with HTTP {status}"
    if isinstance(exc, InvalidProxyMessage):
        return f"{name} did not answer as an HTTP proxy: {printable(exc, 120)}"
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return f"{name} refused the connection"
    if isinstance(exc, TimeoutError):
        return f"{name} did not answer in time"
    return f"{name} failed: {printable(exc, 200)}"


#: A WebSocket's own failures (TLS, the handshake) first, then the connection's.
WS_ERRORS: Wording = (
    (
        ssl.SSLCertVerificationError,
        lambda exc, where: f"TLS certificate verification failed for {where}: {exc.verify_message or exc.reason}",
    ),
    (ssl.SSLError, lambda exc, where: f"TLS handshake with {where} failed: {exc.reason or exc}"),
    (
        InvalidStatus,
        lambda exc, where: f"{where} rejected the WebSocket handshake with HTTP {exc.response.status_code}",
    ),
    (InvalidURI, lambda exc, where: f"invalid WebSocket URI for {where}"),
    (InvalidHandshake, lambda exc, where: f"WebSocket handshake with {where} failed: {printable(exc)}"),
    *CONNECT_ERRORS,
)


def describe_ws_error(exc: BaseException, where: str) -> str:
    return describe_connect_error(exc, where, WS_ERRORS)


async def open_ws(
    target: Target,
    options: WsOptions,
    timeout_s: float = CONNECT_TIMEOUT_S,
    proxy: Proxy | None = None,
    family: int = 0,
) -> ClientConnection:
    where = format_address(target.host, target.port)
    subprotocols = [Subprotocol(options.subprotocol)] if options.subprotocol else None
    # Only a direct connection picks its address family; through a proxy the
    # proxy resolves the name.
    extra: dict[str, Any] = {"family": family} if family and proxy is None else {}
    try:
        return await connect(
            _uri(target),
            ssl=ssl_context(target, options),
            additional_headers=options.headers or None,
            subprotocols=subprotocols,
            # Measure the path asked for: the proxy given, never one the
            # environment names unasked; no automatic pings, no compression.
            proxy=None if proxy is None else proxy.url,
            ping_interval=None,
            compression=None,
            open_timeout=timeout_s,
            max_size=options.max_size,
            user_agent_header="natprobe",
            **extra,
        )
    except UsageError:
        raise
    except (ProxyError, SocksError) as exc:
        raise TargetError(describe_proxy_error(exc, proxy)) from None
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ssl.SSLError) as exc:
        if proxy is not None and isinstance(exc, OSError | TimeoutError):
            # The socket we opened was the proxy's.
            raise TargetError(describe_proxy_error(exc, proxy)) from None
        raise TargetError(describe_ws_error(exc, where)) from None


def ws_ended(exc: ConnectionClosed) -> ConnectionEnded:
    """How a WebSocket session ended: a close frame, a bare TCP close (1006), a reset."""
    cause = exc.__cause__
    if isinstance(cause, ConnectionResetError):
        ended = ConnectionEnded(FailureMode.RESET, "reset")
    elif isinstance(cause, OSError) and cause.errno == errno.ETIMEDOUT:
        # The kernel gave up on unacknowledged data (TCP_USER_TIMEOUT or
        # keepalive): the path went silent, no close happened.
        ended = ConnectionEnded(FailureMode.SILENT_DROP, "timed out")
        ended.timed_out = True
    elif exc.rcvd is not None:
        reason = printable(exc.rcvd.reason, 123)
        ended = ConnectionEnded(FailureMode.CLOSED, f"close frame {exc.rcvd.code} {reason!r}")
    else:
        ended = ConnectionEnded(FailureMode.CLOSED, "TCP connection closed without a close frame (1006)")
    ended.close_code = exc.rcvd.code if exc.rcvd is not None else 1006
    ended.close_reason = printable(exc.rcvd.reason, 123) if exc.rcvd is not None else ""
    return ended


class WsProtocolConnection:
    """The natprobe protocol over one WebSocket session."""

    def __init__(self, ws: ClientConnection, where: str) -> None:
        self.ws = ws
        self.where = where
        # Sends are synchronous for callers (as over TCP); a writer task
        # sends queued messages in order.
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        try:
            while True:
                await self.ws.send(await self._outbox.get())
        except ConnectionClosed:
            pass

    @classmethod
    async def open(
        cls,
        target: Target,
        options: WsOptions,
        timeout_s: float = CONNECT_TIMEOUT_S,
        proxy: Proxy | None = None,
        family: int = 0,
    ) -> WsProtocolConnection:
        ws = await open_ws(target, replace_max_size(options), timeout_s, proxy, family)
        return cls(ws, format_address(target.host, target.port))

    @property
    def socket(self) -> socket.socket:
        sock: socket.socket = self.ws.transport.get_extra_info("socket")
        return sock

    def local_address(self) -> str:
        host, port = self.ws.local_address[:2]
        return format_address(str(host), int(port))

    def send(self, *messages: dict[str, Any]) -> None:
        for message in messages:
            self._outbox.put_nowait(encode(message).decode("utf-8").rstrip("\n"))

    async def recv(self) -> dict[str, Any]:
        try:
            message = await self.ws.recv()
        except ConnectionClosed as exc:
            raise ws_ended(exc) from None
        return parse_reply(self.where, message.encode("utf-8") if isinstance(message, str) else message)

    async def hello(
        self, token: str | None = None, timeout_s: float = CONNECT_TIMEOUT_S, run: str | None = None, **asks: float
    ) -> Welcome:
        return await hello_exchange(self, token, timeout_s, run, asks)

    async def ping(self) -> float:
        """Send a WebSocket ping; return its round-trip time when the pong comes."""
        waiter = await self.ws.ping()
        return await waiter

    async def send_ping(self) -> None:
        """Send a WebSocket ping and do not wait for its pong (a design's traffic)."""
        await self.ws.ping()

    def abort(self) -> None:
        self._writer.cancel()
        self.ws.transport.abort()

    async def close(self) -> None:
        self._writer.cancel()
        try:
            async with asyncio.timeout(1.0):
                await self.ws.close()
        except (OSError, TimeoutError):
            self.ws.transport.abort()


def replace_max_size(options: WsOptions) -> WsOptions:
    """Protocol sessions carry small messages only."""
    return WsOptions(options.headers, options.subprotocol, options.cacert, options.insecure, MAX_LINE)
