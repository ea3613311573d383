"""What to set, per stack, for the design that kept the path (the human summary's advice).

Pure text from the recommended interval: the JSON names the design
(``recommendations.design``) and the interval; these are the lines a
reader copies into their own code.
"""

from __future__ import annotations

from probe.core.designs import Design
from probe.core.recommend import keepalive_probe_interval

#: (stack, what to set) lines.
Settings = list[tuple[str, str]]

_KEEPALIVE_OPTIONS = "SO_KEEPALIVE=1, TCP_KEEPIDLE={idle}, TCP_KEEPINTVL={probe}, TCP_KEEPCNT=3"

#: Per design, per stack, what to set; filled in by :func:`design_settings`:
#: {every} and {ms} the interval, {idle} and {probe} whole seconds for
#: keepalive options, {timeout} and {timeout_ms} the heartbeat's answer time.
SETTINGS: dict[Design, tuple[tuple[str, str], ...]] = {
    Design.TCP_KEEPALIVE: (
        ("Linux, system-wide", "sysctl -w net.ipv4.tcp_keepalive_time={idle} net.ipv4.tcp_keepalive_intvl={probe}"),
        ("Python, per socket", _KEEPALIVE_OPTIONS),
    ),
    Design.SERVER_KEEPALIVE: (
        ("server, per accepted socket", _KEEPALIVE_OPTIONS),
        ("nginx", "listen ... so_keepalive={idle}s:{probe}:3;"),
    ),
    Design.CLIENT_DATA: (
        ("Python asyncio", "every {every}s, writer.write() a message the server ignores (no answer needed)"),
        ("websockets", "every {every}s, await ws.send() a message the server ignores"),
        ("Node.js ws", "setInterval(() => ws.send('{{}}'), {ms})"),
    ),
    Design.SERVER_DATA: (
        ("server, any stack", "every {every}s, send each idle client a message it ignores"),
        ("websockets (server)", "every {every}s, await ws.send() to each connection"),
        ("Node.js ws (server)", "setInterval(() => wss.clients.forEach(c => c.send('{{}}')), {ms})"),
    ),
    Design.WS_PING: (
        ("websockets", "connect(..., ping_interval={every}, ping_timeout={timeout})"),
        ("Node.js ws", "setInterval(() => ws.ping(), {ms})"),
        ("browsers", "cannot send pings: use a message heartbeat instead"),
    ),
    Design.HEARTBEAT: (
        ("any stack", "every {every}s, send a request the server answers; no answer in {timeout}s: reconnect"),
        ("Socket.IO", "pingInterval: {ms}, pingTimeout: {timeout_ms} (answered heartbeats)"),
    ),
    Design.CLIENT_ONLY: (
        ("WireGuard", "PersistentKeepalive = {idle}"),
        ("any UDP protocol", "every {every}s, send one datagram the peer need not answer"),
    ),
    Design.REQUEST_RESPONSE: (
        ("STUN", "a Binding request every {every}s (RFC 5626 keepalive)"),
        ("QUIC", "keep_alive_interval {every}s (PING, answered by an ACK)"),
    ),
}


def design_settings(design: Design, interval_s: float, timeout_s: float) -> Settings:
    """How to run ``design`` at ``interval_s`` in a few common stacks."""
    idle = max(1, int(interval_s))
    values = {
        "every": f"{interval_s:g}",
        "ms": int(interval_s * 1000),
        "idle": idle,
        "probe": keepalive_probe_interval(idle),
        "timeout": f"{timeout_s:g}",
        "timeout_ms": int(timeout_s * 1000),
    }
    return [(stack, text.format(**values)) for stack, text in SETTINGS[design]]
