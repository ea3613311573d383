"""A live kernel is not a live application: ``natprobe demo --hung-server``.

The demo's server says welcome and then its application stops: it reads
nothing more, answers nothing, closes nothing, while its kernel goes on
acknowledging. Two checks wait on it side by side. One relies on kernel
keepalive: the kernel's probes are acknowledged, so the connection looks
alive for as long as it waits. The other sends heartbeats the application
must answer: it notices within the heartbeat's interval plus its timeout.

Sans-I/O: this module reads the two checks' results; run/demo.py runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from probe.core.check import CheckResult
from probe.core.keepalive import KeepaliveInForce
from probe.core.model import Model

SCHEMA = "natprobe.hung-server/1"

#: Failure modes that mean the client learned its peer was gone (the kernel
#: ended the connection, or the heartbeat went unanswered), as opposed to
#: waiting out the whole time without learning anything.
NOTICED = frozenset({"timeout", "reset", "closed", "heartbeat_timeout"})


def noticed_s(check: CheckResult) -> float | None:
    """When the check learned the peer's application was gone; None: never."""
    return check.alive_s if check.failure_mode in NOTICED else None


@dataclass(frozen=True)
class KeepaliveWatch:
    """(schema: ``hung_server.keepalive``) The connection kernel keepalive watched."""

    noticed_s: float | None
    waited_s: float
    #: Read back from the kernel: the keepalive really was on.
    keepalive_in_force: KeepaliveInForce
    #: How long that keepalive takes to end a connection to a dead peer
    #: (idle + interval x count): the demo waits longer than this.
    dead_peer_s: float | None


@dataclass(frozen=True)
class HeartbeatWatch:
    """(schema: ``hung_server.heartbeat``) The connection a heartbeat watched."""

    noticed_s: float | None
    interval_s: float
    timeout_s: float
    sent: int
    answered: int


@dataclass(frozen=True)
class HungServer:
    keepalive: KeepaliveWatch
    heartbeat: HeartbeatWatch


@dataclass(frozen=True)
class HungServerDemo(Model):
    """(schema: ``natprobe.hung-server/1``)"""

    schema: str = field(default=SCHEMA, kw_only=True)
    server: str
    hung_server: HungServer
    wall_s: float


def hung_server(by_keepalive: CheckResult, by_heartbeat: CheckResult, server: str, wall_s: float) -> HungServerDemo:
    """The demo's result from its two checks on the hung server."""
    kernel = by_keepalive.keepalive_in_force
    report = by_heartbeat.heartbeat
    if report is None:
        raise ValueError("the heartbeat check ran without a heartbeat")
    return HungServerDemo(
        server=server,
        hung_server=HungServer(
            KeepaliveWatch(noticed_s(by_keepalive), by_keepalive.alive_s, kernel, kernel.dead_peer_s),
            HeartbeatWatch(
                noticed_s(by_heartbeat),
                report.settings.interval_s,
                report.settings.timeout_s,
                report.stats.sent,
                report.stats.answered,
            ),
        ),
        wall_s=round(wall_s, 3),
    )
