"""Every connection natprobe opens starts here: an Endpoint, dialled.

An ``Endpoint`` is what it takes to reach a server: the target and the
options every command used to repeat (shared secret, WebSocket options, how
long connecting and hello may take). ``dial`` opens a natprobe protocol
connection over TCP or WebSocket, ``dial_stream`` a plain TCP connection to
any server (``hold``), ``dial_ws`` a plain WebSocket session (``hold`` of a
ws:// target). A proxy, when natprobe has one, is one more field here.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field, replace

from python_socks import ProxyError as SocksError
from python_socks.async_.asyncio import Proxy as SocksProxy
from websockets.asyncio.client import ClientConnection

from probe.core.keepalive import KeepaliveSettings
from probe.core.protocol import MAX_LINE
from probe.core.proxy import Proxy
from probe.core.targets import Scheme, Target, format_address
from probe.errors import TargetError
from probe.net.client import CONNECT_TIMEOUT_S, MessageConnection, ProtocolConnection, describe_connect_error
from probe.net.sockopts import apply_keepalive
from probe.net.ws_client import WsOptions, WsProtocolConnection, describe_proxy_error, open_ws


@dataclass(frozen=True)
class Endpoint:
    target: Target
    #: The server's shared secret, sent in hello.
    token: str | None = None
    ws: WsOptions = field(default_factory=WsOptions)
    #: Bound on connecting, and on the server's answer to hello.
    timeout_s: float = CONNECT_TIMEOUT_S
    #: Every connection goes through this proxy (HTTP CONNECT or SOCKS5).
    proxy: Proxy | None = None
    #: socket.AF_INET or AF_INET6 to reach a dual-stack name over one family
    #: only (a survey's paths); 0 lets the resolver choose.
    family: int = 0

    @property
    def where(self) -> str:
        return format_address(self.target.host, self.target.port)

    def to(self, target: Target) -> Endpoint:
        """The same options for another target (a UDP run's control connection)."""
        return replace(self, target=target)


@dataclass(frozen=True)
class Reaching:
    """The options of a run against one endpoint: what every such run shares."""

    endpoint: Endpoint

    @property
    def target(self) -> Target:
        return self.endpoint.target

    @property
    def proxy(self) -> str | None:
        """The proxy as results show it (never its password), or None."""
        return None if self.endpoint.proxy is None else str(self.endpoint.proxy)


async def dial(endpoint: Endpoint, keepalive: KeepaliveSettings | None = None) -> MessageConnection:
    """A natprobe protocol connection to the endpoint's server (hello not yet said)."""
    target = endpoint.target
    conn: MessageConnection
    if target.scheme is Scheme.TCP:
        reader, writer = await dial_stream(endpoint, limit=MAX_LINE * 2)
        conn = ProtocolConnection(reader, writer, endpoint.where)
    else:
        conn = await WsProtocolConnection.open(target, endpoint.ws, endpoint.timeout_s, endpoint.proxy, endpoint.family)
    if keepalive is not None:
        try:
            apply_keepalive(conn.socket, keepalive)
        except BaseException:
            conn.abort()
            raise
    return conn


async def dial_stream(endpoint: Endpoint, limit: int = 2**16) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A plain TCP connection to the endpoint, whatever server listens there:
    through the proxy (a CONNECT or SOCKS5 tunnel) when there is one."""
    target = endpoint.target
    if endpoint.proxy is not None:
        sock = await _tunnel(endpoint, endpoint.proxy)
        return await asyncio.open_connection(sock=sock, limit=limit)
    try:
        async with asyncio.timeout(endpoint.timeout_s):
            return await asyncio.open_connection(target.host, target.port, limit=limit, family=endpoint.family)
    except (OSError, TimeoutError) as exc:
        raise TargetError(describe_connect_error(exc, endpoint.where)) from None


async def _tunnel(endpoint: Endpoint, proxy: Proxy) -> socket.socket:
    """A socket connected to the target through ``proxy`` (python-socks)."""
    client = SocksProxy.from_url(proxy.socks_url, rdns=proxy.remote_dns)
    try:
        sock: socket.socket = await client.connect(
            dest_host=endpoint.target.host, dest_port=endpoint.target.port, timeout=endpoint.timeout_s
        )
    except (SocksError, OSError) as exc:
        raise TargetError(describe_proxy_error(exc, proxy)) from None
    return sock


async def dial_ws(endpoint: Endpoint) -> ClientConnection:
    """A plain WebSocket session to the endpoint's URL, whatever server it is."""
    return await open_ws(endpoint.target, endpoint.ws, endpoint.timeout_s, endpoint.proxy, endpoint.family)
