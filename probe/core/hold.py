"""``hold``'s result: how long one connection to any server lived, and how it ended.

One model for both transports: a raw TCP hold's kernel facts are its ``tcp``
part, a WebSocket hold's sessions its ``ws`` part; their fields stand beside
the common ones in the JSON.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from probe.core.endings import Ending
from probe.core.heartbeat import HeartbeatSettings, HeartbeatStats
from probe.core.keepalive import KeepaliveInForce, KeepaliveSettings
from probe.core.model import Model, inline

SCHEMA = "natprobe.hold/1"
#: Sessions that die within this fraction of each other's age, with their
#: heartbeats answered, look like a lifetime cap rather than an idle timeout.
CAP_SPREAD = 0.10


@dataclass(frozen=True)
class TcpHold:
    bytes_received: int
    keepalive: KeepaliveSettings
    keepalive_in_force: KeepaliveInForce
    #: TCP_INFO sampled last before the end, and at the end (after a reset
    #: the kernel has forgotten most of it).
    tcp_info: dict[str, int] | None
    tcp_info_end: dict[str, int] | None
    local: str


@dataclass(frozen=True)
class WsSession:
    """One WebSocket session of a hold (``--repeat`` holds several)."""

    alive_s: float
    ended: Ending
    detail: str
    close_code: int | None
    close_reason: str | None
    messages_received: int
    heartbeat: HeartbeatStats | None
    #: The handshake's Server header or the close reason named natprobe.
    natprobe_server: bool = False

    @property
    def heartbeats_answered(self) -> bool:
        return self.heartbeat is not None and self.heartbeat.all_answered


def lifetime_cap(sessions: list[WsSession]) -> float | None:
    """The common age at which sessions died despite answered heartbeats, if any."""
    died = [s for s in sessions if s.ended in (Ending.CLOSED, Ending.RESET) and s.heartbeats_answered]
    if len(died) < 2 or len(died) != len(sessions):
        return None
    ages = [s.alive_s for s in died]
    middle = statistics.median(ages)
    if max(ages) - min(ages) <= max(CAP_SPREAD * middle, 1.0):
        return middle
    return None


@dataclass(frozen=True)
class WsHold:
    """The first session's close and heartbeats, then every session."""

    close_code: int | None
    close_reason: str | None
    messages_received: int
    heartbeat: HeartbeatStats | None
    heartbeat_config: HeartbeatSettings | None
    sessions: list[WsSession]
    lifetime_cap_s: float | None
    note: str | None


def ws_hold(sessions: list[WsSession], heartbeat: HeartbeatSettings | None) -> WsHold:
    first, cap = sessions[0], lifetime_cap(sessions)
    note = None
    if cap is not None:
        note = (
            f"every session died at about {cap:.1f}s although its heartbeats were answered: "
            "a lifetime cap on connections, not an idle timeout; heartbeats cannot fix it, reconnect before it"
        )
    return WsHold(
        first.close_code,
        first.close_reason,
        first.messages_received,
        first.heartbeat,
        heartbeat,
        sessions,
        None if cap is None else round(cap, 3),
        note,
    )


@dataclass(frozen=True)
class HoldResult(Model):
    """(schema: ``natprobe.hold/1``)"""

    schema: str = field(default=SCHEMA, kw_only=True)
    target: str
    transport: str
    proxy: str | None
    duration_s: float
    alive_s: float
    ended: Ending
    detail: str
    lasted: bool
    natprobe_server: bool
    tcp: TcpHold | None = field(default=None, metadata=inline())
    ws: WsHold | None = field(default=None, metadata=inline())
