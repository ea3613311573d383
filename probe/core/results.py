"""Result models and their JSON forms (schemas in docs/schemas.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from probe.core.evidence import Bracket, IdleTest
from probe.core.plan import PlanInputs, make_plan
from probe.core.recommend import recommendations, recommended_interval


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


@dataclass
class DiscoverResult:
    target: str
    transport: str
    bracket: Bracket
    tests: list[IdleTest]
    wall_s: float
    nat: dict[str, Any]
    max_idle_s: float
    reason: str
    interrupted: bool = False
    server: str | None = None
    connections: dict[str, Any] = field(default_factory=dict)
    target_width_s: float | None = None
    grace_s: float | None = None
    rtt_s: float | None = None
    after_expiry: dict[str, Any] | None = None
    server_view: dict[str, Any] = field(default_factory=dict)
    ip_version: int = 4
    tls: bool = False
    #: Seconds the whole run took, the after-expiry test included.
    total_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        b = self.bracket
        return {
            "schema": "natprobe.discover/1",
            "target": self.target,
            "transport": self.transport,
            "lower_s": _r(b.lower),
            "upper_s": _r(b.upper),
            "estimate_s": _r(b.estimate),
            "width_s": _r(b.width),
            "failure_mode": b.failure_mode.value if b.failure_mode else None,
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
            "nat": self.nat,
            "connections": self.connections,
            "recommended_keepalive_s": recommended_interval(b),
            "recommendations": recommendations(b, b.failure_mode.value if b.failure_mode else None),
            "plan": make_plan(PlanInputs(b, self.rtt_s, self.ip_version, self.tls)),
            "after_expiry": self.after_expiry,
            "server_view": self.server_view,
            "probes": [t.to_json() for t in sorted(self.tests, key=lambda t: t.result_at)],
        }
