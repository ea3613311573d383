"""Open a natprobe protocol connection for a target, over TCP or WebSocket."""

from __future__ import annotations

from probe.core.targets import Target
from probe.net.client import CONNECT_TIMEOUT_S, MessageConnection, ProtocolConnection
from probe.net.sockopts import KeepaliveSettings, apply_keepalive
from probe.net.ws_client import WsOptions, WsProtocolConnection


async def open_protocol(
    target: Target,
    ws: WsOptions | None = None,
    keepalive: KeepaliveSettings | None = None,
    timeout_s: float = CONNECT_TIMEOUT_S,
) -> MessageConnection:
    if target.scheme == "tcp":
        return await ProtocolConnection.open(target.host, target.port, keepalive=keepalive, timeout_s=timeout_s)
    conn = await WsProtocolConnection.open(target, ws or WsOptions(), timeout_s=timeout_s)
    if keepalive is not None:
        try:
            apply_keepalive(conn.socket, keepalive)
        except BaseException:
            conn.abort()
            raise
    return conn
