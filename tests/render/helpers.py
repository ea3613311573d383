"""A discover result to render: the same one in every renderer test."""

from __future__ import annotations

from typing import Any

from probe.core.evidence import Evidence, FailureMode, IdleTest, Outcome
from probe.core.results import DiscoverResult


def sample_discover_result() -> dict[str, Any]:
    evidence = Evidence()
    for idle, ok in [(1.9, True), (4.0, True), (6.2, False), (4.4, False), (4.9, False)]:
        outcome = Outcome.SURVIVED if ok else Outcome.FAILED
        evidence.add(IdleTest(0, idle, outcome, None if ok else FailureMode.SILENT_DROP, result_at=idle))
    return DiscoverResult(
        target="tcp://198.18.0.5:4040",
        transport="tcp",
        bracket=evidence.bracket(),
        tests=evidence.tests,
        wall_s=7.4,
        nat={"local": "10.0.0.2:5000", "observed": "203.0.113.9:5000", "detected": True, "port_preserved": True},
        max_idle_s=7800,
        reason="resolved",
        connections={"max_open": 57, "opened": 57},
        after_expiry={
            "outcome": "revived",
            "port_changed": False,
            "waited_s": 0.01,
            "detail": "answered",
            "after_lost_push": {
                "outcome": "revived",
                "port_changed": False,
                "waited_s": 0.7,
                "detail": "answered",
                "late_push_delivered": True,
            },
        },
        server_view={"unacknowledged_pushes": 3},
    ).to_json()
