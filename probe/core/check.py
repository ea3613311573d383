"""``check``'s result: did one connection idle for a given time still get the push?

One model for every transport: the UDP check's own facts (the flow state,
the control connection, the copies pushed) are its optional ``udp`` part,
whose fields stand beside the others in the JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from probe.core.after_expiry import AfterExpiry
from probe.core.evidence import Outcome
from probe.core.heartbeat import HeartbeatReport
from probe.core.history import CheckSummary, HistoryNote
from probe.core.keepalive import KeepaliveInForce, KeepaliveSettings
from probe.core.model import Model, inline, omitted_when_none
from probe.core.nat import NatFacts

SCHEMA = "natprobe.check/1"


class Evidence(StrEnum):
    """Whose traffic the idle had in it. Keepalive probes and heartbeats come
    from this client: a pass then says "this setting keeps the connection
    usable", not that the path keeps an idle flow (a NAT may re-create a mapping)."""

    SERVER_PUSH = "server_push"
    WITH_KEEPALIVE = "server_push_with_client_keepalive"
    WITH_HEARTBEATS = "server_push_with_client_heartbeats"


@dataclass(frozen=True)
class Close:
    """(schema: ``close``) The WebSocket close the connection ended with."""

    code: int
    reason: str


@dataclass(frozen=True)
class UdpCheck:
    """The UDP check's own facts."""

    udp_state: str
    #: The control connection's target.
    control: str
    #: Copies of the push the server sent (a lost datagram is not an expiry).
    push_copies: int


@dataclass(frozen=True)
class CheckResult(Model):
    """(schema: ``natprobe.check/1``)"""

    schema: str = field(default=SCHEMA, kw_only=True)
    target: str
    transport: str
    proxy: str | None
    idle_s: float
    passed: bool
    outcome: Outcome
    failure_mode: str | None
    alive_s: float
    push_idle_s: float | None
    client_originated: bool
    evidence: Evidence
    keepalive: KeepaliveSettings
    keepalive_in_force: KeepaliveInForce
    heartbeat: HeartbeatReport | None
    close: Close | None
    tcp_info: dict[str, int] | None
    after_expiry: AfterExpiry | None
    nat: NatFacts
    wall_s: float
    udp: UdpCheck | None = field(default=None, metadata=inline())
    #: How this result compares with the last on its path (added once saved).
    history: HistoryNote | None = field(default=None, metadata=omitted_when_none())

    def summary(self) -> CheckSummary:
        return CheckSummary(self.idle_s, self.passed, self.failure_mode, self.client_originated)


def evidence(keepalive: bool, heartbeat: bool) -> Evidence:
    if heartbeat:
        return Evidence.WITH_HEARTBEATS
    return Evidence.WITH_KEEPALIVE if keepalive else Evidence.SERVER_PUSH
