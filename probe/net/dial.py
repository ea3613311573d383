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
from dataclasses import dataclass, field, replace

from websockets.asyncio.client import ClientConnection

from probe.core.targets import Target, format_address
from probe.errors import TargetError
from probe.net.client import CONNECT_TIMEOUT_S, MessageConnection, ProtocolConnection, describe_connect_error
from probe.net.sockopts import KeepaliveSettings, apply_keepalive
from probe.net.ws_client import WsOptions, WsProtocolConnection, open_ws


@dataclass(frozen=True)
class Endpoint:
    target: Target
    #: The server's shared secret, sent in hello.
    token: str | None = None
    ws: WsOptions = field(default_factory=WsOptions)
    #: Bound on connecting, and on the server's answer to hello.
    timeout_s: float = CONNECT_TIMEOUT_S

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


async def dial(endpoint: Endpoint, keepalive: KeepaliveSettings | None = None) -> MessageConnection:
    """A natprobe protocol connection to the endpoint's server (hello not yet said)."""
    target = endpoint.target
    if target.scheme == "tcp":
        return await ProtocolConnection.open(
            target.host, target.port, keepalive=keepalive, timeout_s=endpoint.timeout_s
        )
    conn = await WsProtocolConnection.open(target, endpoint.ws, timeout_s=endpoint.timeout_s)
    if keepalive is not None:
        try:
            apply_keepalive(conn.socket, keepalive)
        except BaseException:
            conn.abort()
            raise
    return conn


async def dial_stream(endpoint: Endpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A plain TCP connection to the endpoint, whatever server listens there."""
    target = endpoint.target
    try:
        async with asyncio.timeout(endpoint.timeout_s):
            return await asyncio.open_connection(target.host, target.port)
    except (OSError, TimeoutError) as exc:
        raise TargetError(describe_connect_error(exc, endpoint.where)) from None


async def dial_ws(endpoint: Endpoint) -> ClientConnection:
    """A plain WebSocket session to the endpoint's URL, whatever server it is."""
    return await open_ws(endpoint.target, endpoint.ws, endpoint.timeout_s)
