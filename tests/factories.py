"""Results made by hand, for the tests of what reads them (metrics, nagios,
history, the renderers): the models a run would make, with only the fields a
test cares about changed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from probe.core.check import CheckResult, Evidence
from probe.core.evidence import Bracket, FailureMode, Outcome
from probe.core.keepalive import KeepaliveInForce, KeepaliveSettings
from probe.core.nat import UNKNOWN, NatFacts
from probe.core.results import DiscoverResult, StateResult


def check_result(**changes: Any) -> CheckResult:
    """A check of 120 s on tcp://h:4040 that passed; ``changes`` as in ``replace``."""
    passed = changes.get("passed", True)
    base = CheckResult(
        target="tcp://h:4040",
        transport="tcp",
        proxy=None,
        idle_s=120.0,
        passed=passed,
        outcome=Outcome.of(passed),
        failure_mode=None if passed else "silent_drop",
        alive_s=120.4,
        push_idle_s=120.0 if passed else None,
        client_originated=False,
        evidence=Evidence.SERVER_PUSH,
        keepalive=KeepaliveSettings(),
        keepalive_in_force=KeepaliveInForce(False, 7200, 75, 9, 0.0),
        heartbeat=None,
        close=None,
        tcp_info=None,
        after_expiry=None,
        nat=UNKNOWN,
        wall_s=120.5,
    )
    return replace(base, **changes)


def bracket(lower: float | None, upper: float | None, mode: FailureMode | None = FailureMode.SILENT_DROP) -> Bracket:
    """A consistent bracket; without ``upper`` nothing failed, so no mode."""
    return Bracket(lower, upper, True, lower, upper, mode if upper is not None else None)


def discover_result(
    lower: float | None = 9.9,
    upper: float | None = 10.1,
    mode: FailureMode | None = FailureMode.SILENT_DROP,
    *,
    target: str = "tcp://h:4040",
    observed: str | None = None,
    states: dict[str, tuple[float | None, float | None]] | None = None,
    **changes: Any,
) -> DiscoverResult:
    """A discovery of tcp://h:4040 that resolved [lower, upper]; ``observed``
    is the public address the server saw; ``states`` make it a UDP one."""
    nat = UNKNOWN if observed is None else NatFacts("10.0.0.2:5000", observed, True, False)
    found = DiscoverResult(
        target=target,
        transport="udp" if states else "tcp",
        bracket=bracket(lower, upper, mode),
        tests=[],
        wall_s=12.0,
        nat=nat,
        max_idle_s=7800.0,
        reason="resolved" if upper is not None else "max_idle",
        states=None
        if states is None
        else {name: StateResult(bracket(lo, hi), "resolved", 63) for name, (lo, hi) in states.items()},
    )
    return replace(found, **changes)
