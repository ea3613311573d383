"""Result models and their JSON forms (schemas in docs/schemas.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from probe.core.after_expiry import AfterExpiry
from probe.core.designs import Design, DesignOutcome, Middlebox, middlebox
from probe.core.evidence import Bracket, IdleTest
from probe.core.history import DiscoverSummary, HistoryNote
from probe.core.model import omitted_when_none, to_json
from probe.core.nat import NatFacts
from probe.core.plan import Plan, PlanInputs, make_plan
from probe.core.recommend import Recommendations, recommendations, recommended_interval
from probe.core.udp_advice import UdpPlan, UdpRecommendations, udp_plan, udp_recommendations


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


@dataclass
class StateResult:
    """One UDP flow state's own discovery."""

    bracket: Bracket
    reason: str
    probes: int

    def to_json(self) -> dict[str, Any]:
        b = self.bracket
        return {
            "lower_s": _r(b.lower),
            "upper_s": _r(b.upper),
            "estimate_s": _r(b.estimate),
            "width_s": _r(b.width),
            "failure_mode": b.failure_mode.value if b.failure_mode else None,
            "consistent": b.consistent,
            "reason": self.reason,
            "probes": self.probes,
        }


def shortest_state(states: dict[str, StateResult]) -> str | None:
    """The state whose flows are forgotten first: the one a keepalive must beat.

    By upper bound; among states with no failure, the one proven for least.
    """
    if not states:
        return None

    def key(name: str) -> tuple[float, float]:
        b = states[name].bracket
        return (b.upper if b.upper is not None else float("inf"), b.lower or 0.0)

    return min(states, key=key)


@dataclass(frozen=True)
class Connections:
    """(schema: ``connections``) What the discovery held and opened."""

    #: Connections held at once at the peak, the control connection included.
    max_open: int
    opened: int
    #: Test connections wanted per planner (from --parallel), and allowed.
    asked: int
    pool: int
    #: The server's per-address limit made the pool smaller than asked.
    limited_by_server: bool = False
    #: The welcome's ``limits``, or None.
    server_limits: dict[str, float] | None = None
    #: Design connections held beside the pool (counted in ``max_open`` too).
    designs: int = 0


@dataclass(frozen=True)
class ServerView:
    """(schema: ``server_view``) What the server told of the run; UDP has nothing to tell."""

    #: TCP: pushes the server wrote that the path never delivered.
    unacknowledged_pushes: int | None = field(default=None, metadata=omitted_when_none())


#: A result made without a run (tests, a survey's placeholder).
NO_CONNECTIONS = Connections(0, 0, 0, 0)


@dataclass
class DiscoverResult:
    target: str
    transport: str
    bracket: Bracket
    tests: list[IdleTest]
    wall_s: float
    nat: NatFacts
    max_idle_s: float
    reason: str
    interrupted: bool = False
    server: str | None = None
    connections: Connections = NO_CONNECTIONS
    target_width_s: float | None = None
    grace_s: float | None = None
    rtt_s: float | None = None
    after_expiry: AfterExpiry | None = None
    server_view: ServerView = field(default_factory=ServerView)
    ip_version: int = 4
    tls: bool = False
    #: Seconds the whole run took, the after-expiry test included.
    total_s: float | None = None
    #: UDP: each flow state's discovery (``bracket`` is the shortest one's),
    #: whether server traffic alone refreshed a binding, the control channel.
    states: dict[str, StateResult] | None = None
    inbound_refresh: bool | None = None
    control: str | None = None
    #: The proxy the connections went through, as shown (no password).
    proxy: str | None = None
    #: How this result compares with the last on its path (added once saved).
    history: HistoryNote | None = None
    #: Each keepalive design tried on the path, and whether it kept the flow.
    designs: dict[Design, DesignOutcome] | None = None

    @property
    def middlebox(self) -> Middlebox | None:
        """What kind of box forgets, from the designs; None where none were
        tried, and for UDP (the kinds tell TCP boxes apart)."""
        return None if self.designs is None or self.states is not None else middlebox(self.designs)

    @property
    def shortest_state(self) -> str | None:
        """UDP: the flow state with the shortest timer (its bracket is ``bracket``)."""
        return None if self.states is None else shortest_state(self.states)

    @property
    def advice(self) -> Recommendations | UdpRecommendations | None:
        """Settings to copy; None without a measured failure."""
        if self.states is not None:
            return udp_recommendations(self.bracket, self.shortest_state, self.designs)
        mode = self.bracket.failure_mode
        return recommendations(self.bracket, mode.value if mode else None, self.designs)

    @property
    def plan(self) -> Plan | UdpPlan:
        if self.states is not None:
            return udp_plan(self.bracket, self.ip_version)
        return make_plan(PlanInputs(self.bracket, self.rtt_s, self.ip_version, self.tls, self.designs))

    def summary(self) -> DiscoverSummary:
        b = self.bracket
        mode = b.failure_mode.value if b.failure_mode else None
        return DiscoverSummary(_r(b.lower), _r(b.upper), _r(b.estimate), mode, b.consistent, self.reason)

    def to_json(self) -> dict[str, Any]:
        b = self.bracket
        mode = b.failure_mode.value if b.failure_mode else None
        state = self.shortest_state
        history = {} if self.history is None else {"history": to_json(self.history)}
        return {
            "schema": "natprobe.discover/1",
            "target": self.target,
            "transport": self.transport,
            "lower_s": _r(b.lower),
            "upper_s": _r(b.upper),
            "estimate_s": _r(b.estimate),
            "width_s": _r(b.width),
            "failure_mode": mode,
            "consistent": b.consistent,
            "longest_survived_s": _r(b.longest_survived),
            "shortest_failed_s": _r(b.shortest_failed),
            "evidence": "server_push",
            "wall_s": _r(self.wall_s),
            "total_s": _r(self.total_s if self.total_s is not None else self.wall_s),
            "reason": self.reason,
            "interrupted": self.interrupted,
            "max_idle_s": self.max_idle_s,
            "target_width_s": _r(self.target_width_s),
            "grace_s": _r(self.grace_s),
            "rtt_s": _r(self.rtt_s, 5),
            "server": self.server,
            "proxy": self.proxy,
            "nat": to_json(self.nat),
            "connections": to_json(self.connections),
            "recommended_keepalive_s": recommended_interval(b),
            "recommendations": to_json(self.advice),
            "plan": to_json(self.plan),
            "control": self.control,
            "states": None if self.states is None else {name: s.to_json() for name, s in self.states.items()},
            "shortest_state": state,
            "inbound_refresh": self.inbound_refresh,
            "after_expiry": to_json(self.after_expiry),
            "designs": to_json(self.designs),
            "middlebox": to_json(self.middlebox),
            "server_view": to_json(self.server_view),
            "probes": [t.to_json() for t in sorted(self.tests, key=lambda t: t.result_at)],
            **history,
        }
