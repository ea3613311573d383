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


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def design_settings(design: Design, interval_s: float, timeout_s: float) -> Settings:
    """How to run ``design`` at ``interval_s`` in a few common stacks."""
    every, ms = f"{interval_s:g}", _ms(interval_s)
    idle = max(1, int(interval_s))
    probe = keepalive_probe_interval(idle)
    options = f"SO_KEEPALIVE=1, TCP_KEEPIDLE={idle}, TCP_KEEPINTVL={probe}, TCP_KEEPCNT=3"
    if design is Design.TCP_KEEPALIVE:
        return [
            ("Linux, system-wide", f"sysctl -w net.ipv4.tcp_keepalive_time={idle} tcp_keepalive_intvl={probe}"),
            ("Python, per socket", options),
        ]
    if design is Design.SERVER_KEEPALIVE:
        return [
            (
                "server, per accepted socket",
                f"SO_KEEPALIVE=1, TCP_KEEPIDLE={idle}, TCP_KEEPINTVL={probe}, TCP_KEEPCNT=3",
            ),
            ("nginx", f"listen ... so_keepalive={idle}s:{probe}:3;"),
        ]
    if design is Design.CLIENT_DATA:
        return [
            ("Python asyncio", f"every {every}s, writer.write() a message the server ignores (no answer needed)"),
            ("websockets", f"every {every}s, await ws.send() a message the server ignores"),
            ("Node.js ws", f"setInterval(() => ws.send('{{}}'), {ms})"),
        ]
    if design is Design.SERVER_DATA:
        return [
            ("server, any stack", f"every {every}s, send each idle client a message it ignores"),
            ("websockets (server)", f"every {every}s, await ws.send() to each connection"),
            ("Node.js ws (server)", f"setInterval(() => wss.clients.forEach(c => c.send('{{}}')), {ms})"),
        ]
    if design is Design.CLIENT_ONLY:
        return [
            ("WireGuard", f"PersistentKeepalive = {idle}"),
            ("any UDP protocol", f"every {every}s, send one datagram the peer need not answer"),
        ]
    if design is Design.REQUEST_RESPONSE:
        return [
            ("STUN", f"a Binding request every {every}s (RFC 5626 keepalive)"),
            ("QUIC", f"keep_alive_interval {every}s (PING, answered by an ACK)"),
        ]
    if design is Design.WS_PING:
        return [
            ("websockets", f"connect(..., ping_interval={every}, ping_timeout={timeout_s:g})"),
            ("Node.js ws", f"setInterval(() => ws.ping(), {ms})"),
            ("browsers", "cannot send pings: use a message heartbeat instead"),
        ]
    return [
        ("any stack", f"every {every}s, send a request the server answers; no answer in {timeout_s:g}s: reconnect"),
        ("Socket.IO", f"pingInterval: {ms}, pingTimeout: {_ms(timeout_s)} (answered heartbeats)"),
    ]
