"""Keepalive designs tried on the path itself, sans-I/O (docs/designs.md).

Beside the planner's pool, a discovery holds one connection per design. Each
carries only its own design's traffic (kernel keepalive probes, a one-way
message, a heartbeat, a WebSocket ping), about every second. Once the
bracket is settled, every design connection has been idle, apart from that
traffic, for longer than the path's timeout; the server then pushes on it.
Where the push arrives, that design kept the flow on this path. Which
designs kept it tells what kind of box forgets (``middlebox``), and the
advice names only designs that did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from probe.core.evidence import FailureMode
from probe.core.model import omitted_when_none


class Design(StrEnum):
    TCP_KEEPALIVE = "tcp_keepalive"
    SERVER_KEEPALIVE = "server_keepalive"
    CLIENT_DATA = "client_data"
    SERVER_DATA = "server_data"
    WS_PING = "ws_ping"
    HEARTBEAT = "heartbeat"
    #: udp://: a one-way keepalive from the client, as WireGuard sends.
    CLIENT_ONLY = "client_only"
    #: udp://: a request the server answers, as STUN binding and QUIC PING.
    REQUEST_RESPONSE = "request_response"


#: Cheapest first. Kernel keepalive costs no application code and no
#: wake-ups of the application; on the server it is one socket option; a
#: one-way message is one small packet (and its ACK), the server's costs the
#: server a timer per client; a ping is two frames a library sends itself;
#: a heartbeat is a request, an answer and code at both ends.
COST_ORDER = (
    Design.TCP_KEEPALIVE,
    Design.SERVER_KEEPALIVE,
    Design.CLIENT_DATA,
    Design.SERVER_DATA,
    Design.WS_PING,
    Design.HEARTBEAT,
)
#: udp://, cheapest first: one datagram, or a datagram and its answer.
UDP_COST_ORDER = (Design.CLIENT_ONLY, Design.REQUEST_RESPONSE)

#: What each design sends, in words (the summary shows it beside the verdict).
TRAFFIC = {
    Design.TCP_KEEPALIVE: "the client's kernel keepalive probes, no data",
    Design.SERVER_KEEPALIVE: "the server's kernel keepalive probes, no data",
    Design.CLIENT_DATA: "a one-way message from the client, not answered",
    Design.SERVER_DATA: "a one-way message from the server, not answered",
    Design.WS_PING: "a WebSocket ping from the client and the server's pong",
    Design.HEARTBEAT: "a request the server answers (natprobe's beat)",
    Design.CLIENT_ONLY: "a one-way datagram from the client, not answered",
    Design.REQUEST_RESPONSE: "a datagram the server answers with one",
}

#: What each design needs the server to know (its welcome's ``features``).
NEEDS = {
    Design.SERVER_KEEPALIVE: "keepalive_s",
    Design.CLIENT_DATA: "tick",
    Design.SERVER_DATA: "tick_every_s",
}

#: The design connections' traffic comes this often, at the most.
TRAFFIC_EVERY_S = 1.0
#: Keepalive options take whole seconds: 1 s is as fast as kernel keepalive goes.
KEEPALIVE_FLOOR_S = 1.0


def designs_for(websocket: bool) -> tuple[Design, ...]:
    """The designs tried on a tcp:// or a ws(s):// path."""
    return tuple(d for d in COST_ORDER if websocket or d is not Design.WS_PING)


def udp_designs() -> tuple[Design, ...]:
    """The designs tried on a udp:// path."""
    return UDP_COST_ORDER


def traffic_every(design: Design, upper_s: float | None) -> float:
    """How often a design connection sends: every second, faster where the
    bracket is shorter (a quarter of it), never below what the design can do."""
    if design in (Design.TCP_KEEPALIVE, Design.SERVER_KEEPALIVE):
        return KEEPALIVE_FLOOR_S
    every = TRAFFIC_EVERY_S if upper_s is None else min(TRAFFIC_EVERY_S, upper_s / 4)
    return max(0.05, round(every, 3))


class Reason(StrEnum):
    """Why whether a design kept the flow could not be told."""

    NO_TIMEOUT = "no_timeout"
    NOT_OPENED = "not_opened"
    TOO_YOUNG = "too_young"
    INTERRUPTED = "interrupted"
    ENDED_EARLY = "ended_early"
    OLD_SERVER = "old_server"


@dataclass(frozen=True)
class DesignOutcome:
    """(schema: ``designs.NAME``) Whether one design kept the flow on this path."""

    #: True: the push arrived; False: it did not, or the flow ended first;
    #: None: it could not be told (``reason``).
    kept: bool | None
    traffic_every_s: float
    #: How long the connection had been idle, apart from its own traffic, when pushed.
    age_s: float | None
    detail: str
    reason: Reason | None = None
    #: With ``--confirm``: held at the recommended interval for 1.5 x the bound.
    confirmed: bool | None = field(default=None, metadata=omitted_when_none())


@dataclass(frozen=True)
class Middlebox:
    """(schema: ``middlebox``) What kind of box forgets, from which designs kept the flow."""

    kind: Kind
    detail: str


class Kind(StrEnum):
    """(schema: ``middlebox.kind``) The layer the forgetting box keeps its state at."""

    IP_STATEFUL = "ip_stateful"
    TCP_TERMINATING = "tcp_terminating"
    ONE_DIRECTION = "one_direction"
    UNKNOWN = "unknown"


KIND_DETAIL = {
    Kind.IP_STATEFUL: (
        "kernel keepalive and data both kept the flow: the state lives at the IP/TCP layer (a NAT or a firewall)"
    ),
    Kind.TCP_TERMINATING: (
        "data kept the flow but kernel keepalive did not: something terminates TCP and answers the probes itself "
        "(a proxy, a TLS terminator, a userspace NAT or a load balancer)"
    ),
    Kind.ONE_DIRECTION: "data kept the flow in one direction only: the box counts only {direction}",
    Kind.UNKNOWN: "the designs tried do not tell the kind of box",
}


#: The box a kind points to, as the summary's one plain sentence names it.
LIKELY = {
    Kind.IP_STATEFUL: "a NAT or firewall that keeps state per flow",
    Kind.TCP_TERMINATING: "a box that terminates TCP: a proxy, a TLS terminator, a userspace NAT or a load balancer",
    Kind.ONE_DIRECTION: "a box that counts only one direction of data",
    Kind.UNKNOWN: "a box the designs tried could not name",
}


def verdict(designs: dict[Design, DesignOutcome] | None, design: Design) -> bool | None:
    """Whether ``design`` kept the flow on this path; None: not tried, or not told."""
    outcome = None if designs is None else designs.get(design)
    return None if outcome is None else outcome.kept


def middlebox(designs: dict[Design, DesignOutcome]) -> Middlebox:
    """The kind of box that forgets, from the client's keepalive and the two one-way data designs."""
    keepalive, up, down = (verdict(designs, d) for d in (Design.TCP_KEEPALIVE, Design.CLIENT_DATA, Design.SERVER_DATA))
    if up is not None and down is not None and up != down:
        direction = "data from the client" if up else "data from the server"
        return Middlebox(Kind.ONE_DIRECTION, KIND_DETAIL[Kind.ONE_DIRECTION].format(direction=direction))
    if up and down and keepalive is not None:
        kind = Kind.IP_STATEFUL if keepalive else Kind.TCP_TERMINATING
        return Middlebox(kind, KIND_DETAIL[kind])
    return Middlebox(Kind.UNKNOWN, KIND_DETAIL[Kind.UNKNOWN])


def cheapest_kept(designs: dict[Design, DesignOutcome]) -> Design | None:
    """The cheapest design proven to keep the flow, or None."""
    return next((d for d in (*COST_ORDER, *UDP_COST_ORDER) if d in designs and designs[d].kept), None)


#: ``--confirm`` holds each kept design this many times the bracket's upper bound.
CONFIRM_FACTOR = 1.5


def confirm_time_s(max_idle_s: float) -> float:
    """The longest a discovery with ``--confirm`` may take: the bracket by
    1.10 T + 2 s, then 1.5 T at the recommended interval, for T up to ``max_idle_s``."""
    return 1.10 * max_idle_s + 2.0 + CONFIRM_FACTOR * max_idle_s


@dataclass
class _Trial:
    every_s: float
    opened_at: float | None = None
    failed: str | None = None
    #: Why it was not tried, where that is not a failure to open.
    skipped: Reason | None = None
    asked_at: float | None = None
    arrived_at: float | None = None
    ended: tuple[FailureMode, float] | None = None


#: How much older than the bound a design connection must be when pushed:
#: otherwise a flow the box forgets at the bound might still be alive.
AGE_MARGIN_S = 0.25


@dataclass
class DesignTrials:
    """Each design connection's story, and the verdicts (sans-I/O: times come in)."""

    trials: dict[Design, _Trial]

    #: Fixed traffic intervals (``--confirm``'s recommended one): no retiming.
    fixed: bool = False

    @classmethod
    def of(cls, designs: tuple[Design, ...], every_s: float | None = None) -> DesignTrials:
        if every_s is not None:
            return cls({d: _Trial(every_s) for d in designs}, fixed=True)
        return cls({d: _Trial(traffic_every(d, None)) for d in designs})

    def server_knows(self, features: object, server: str) -> None:
        """Leave out the designs this server does not know (it would refuse them)."""
        known = features if isinstance(features, list | tuple) else ()
        for design, trial in self.trials.items():
            need = NEEDS.get(design)
            if need is not None and need not in known:
                trial.skipped = Reason.OLD_SERVER
                trial.failed = f"the server ({server or 'unnamed'}) is too old to know this design ({need})"

    def opened(self, design: Design, now: float) -> None:
        self.trials[design].opened_at = now

    def open_failed(self, design: Design, why: str) -> None:
        self.trials[design].failed = why

    def ended(self, design: Design, mode: FailureMode, now: float) -> None:
        trial = self.trials[design]
        if trial.ended is None and trial.arrived_at is None:
            trial.ended = (mode, now)

    def arrived(self, design: Design, now: float) -> None:
        trial = self.trials[design]
        if trial.asked_at is not None and trial.arrived_at is None:
            trial.arrived_at = now

    def asked(self, design: Design, now: float) -> None:
        self.trials[design].asked_at = now

    def open_count(self) -> int:
        return sum(t.opened_at is not None and t.ended is None for t in self.trials.values())

    def wait_before_push(self, upper_s: float, now: float) -> float:
        """How long until every open design connection is idle past the bound."""
        ages = [now - t.opened_at for t in self.trials.values() if t.opened_at is not None and t.ended is None]
        return max([0.0, *(upper_s + AGE_MARGIN_S - age for age in ages)])

    def to_open(self) -> list[Design]:
        """The designs with room for a connection (cheapest first)."""
        return [d for d, t in self.trials.items() if t.failed is None and t.opened_at is None]

    def to_push(self) -> list[Design]:
        """The open design connections not yet pushed on."""
        return [d for d, t in self.trials.items() if t.opened_at is not None and t.ended is None and t.asked_at is None]

    def to_hear(self, pushed: list[Design]) -> list[Design]:
        """Of the designs pushed on, those whose push has not arrived and whose flow has not ended."""
        return [d for d in pushed if self.trials[d].arrived_at is None and self.trials[d].ended is None]

    def outcomes(
        self, upper_s: float | None, interrupted: bool = False, lower_s: float | None = None
    ) -> dict[Design, DesignOutcome]:
        """Each design's verdict once the pushes had their grace (or the run
        stopped), against the settled bracket (``lower_s`` to ``upper_s``)."""
        return {d: self._outcome(d, t, upper_s, lower_s or 0.0, interrupted) for d, t in self.trials.items()}

    def retime(self, upper_s: float) -> None:
        """A failure bounds the bracket: the data designs' traffic comes at
        least four times within it."""
        if self.fixed:
            return
        for design, trial in self.trials.items():
            trial.every_s = min(trial.every_s, traffic_every(design, upper_s))

    def every_s(self, design: Design) -> float:
        return self.trials[design].every_s

    @staticmethod
    def _outcome(
        design: Design, trial: _Trial, upper_s: float | None, lower_s: float, interrupted: bool
    ) -> DesignOutcome:
        every = trial.every_s

        def unknown(reason: Reason, detail: str) -> DesignOutcome:
            return DesignOutcome(None, every, None, detail, reason)

        if trial.skipped is not None:
            return unknown(trial.skipped, trial.failed or "")
        if trial.opened_at is None:
            return unknown(Reason.NOT_OPENED, f"the connection did not open: {trial.failed or 'no room for it'}")
        if trial.ended is not None:
            mode, at = trial.ended
            age = round(at - trial.opened_at, 3)
            if upper_s is None or age + AGE_MARGIN_S < lower_s:
                # Ended younger than idle flows are known to live: not the
                # path's idle timeout at work (or none was measured).
                detail = f"the connection was {mode.value} after {age:.1f}s, before the bound"
                return DesignOutcome(None, every, age, detail, Reason.ENDED_EARLY)
            return DesignOutcome(False, every, age, f"the flow was {mode.value} after {age:.1f}s despite the traffic")
        if upper_s is None:
            return unknown(Reason.NO_TIMEOUT, "no timeout was measured, so nothing had to keep the flow")
        if trial.asked_at is None:
            reason = Reason.INTERRUPTED if interrupted else Reason.TOO_YOUNG
            return unknown(reason, "not pushed on before the run ended")
        age = round(trial.asked_at - trial.opened_at, 3)
        if age <= upper_s:
            return DesignOutcome(None, every, age, "pushed on before it was idle past the bound", Reason.TOO_YOUNG)
        if trial.arrived_at is not None:
            return DesignOutcome(True, every, age, f"the push arrived after {age:.1f}s with only this traffic")
        return DesignOutcome(False, every, age, f"the push after {age:.1f}s did not arrive")
