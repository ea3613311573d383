"""UDP discovery results: per-state brackets, the shortest state on top, advice and cost."""

from __future__ import annotations

import pytest

from probe.core.designs import Design, DesignOutcome
from probe.core.evidence import FailureMode, IdleTest, Outcome
from probe.core.model import to_json
from probe.core.nat import UNKNOWN
from probe.core.results import DiscoverResult, StateResult, shortest_state
from probe.core.udp_advice import (
    QUIC_ACK,
    QUIC_PING,
    STUN_REQUEST,
    STUN_RESPONSE_V4,
    STUN_RESPONSE_V6,
    WIREGUARD_KEEPALIVE,
    keeps_alive,
    udp_plan,
    udp_recommendations,
)
from tests.core.brackets import bracket


def states(**brackets: tuple[float | None, float | None]) -> dict[str, StateResult]:
    return {name: StateResult(bracket(*b), "resolved", 4) for name, b in brackets.items()}


def test_the_shortest_state_is_the_one_with_the_lowest_upper_bound() -> None:
    assert shortest_state(states(unreplied=(29.0, 30.5), replied=(29.5, 30.1), stream=(119.0, 121.0))) == "replied"
    # A state with no failure is longer than any that failed...
    assert shortest_state(states(unreplied=(200.0, None), stream=(119.0, 121.0))) == "stream"
    # ...and among states without failures, the one proven for least.
    assert shortest_state(states(unreplied=(50.0, None), replied=(20.0, None))) == "replied"
    assert shortest_state({}) is None


def test_with_nothing_proven_a_state_is_shorter_than_one_proven_for_a_while() -> None:
    assert shortest_state(states(unreplied=(0.5, None), replied=(None, None))) == "replied"


def test_a_state_without_failures_has_no_failure_mode() -> None:
    data = StateResult(bracket(12.0, None), "max_idle", 3).to_json()
    assert data["failure_mode"] is None and data["upper_s"] is None and data["lower_s"] == 12.0


def test_state_result_maps_every_field() -> None:
    data = StateResult(bracket(29.95449, 30.40551), "resolved", 7).to_json()
    assert data == {
        "lower_s": 29.954,
        "upper_s": 30.406,
        "estimate_s": 30.18,
        "width_s": 0.451,
        "failure_mode": "silent_drop",
        "consistent": True,
        "reason": "resolved",
        "probes": 7,
    }


def test_a_udp_discovery_puts_the_shortest_state_on_top_with_udp_advice() -> None:
    per_state = states(unreplied=(14.8, 15.2), replied=(29.5, 30.1), stream=(119.0, 121.0))
    test = IdleTest(3, 15.2, Outcome.FAILED, FailureMode.SILENT_DROP, state="unreplied")
    data = DiscoverResult(
        target="udp://h:4040", transport="udp", bracket=per_state["unreplied"].bracket, tests=[test], wall_s=140.0,
        nat=UNKNOWN, max_idle_s=7800.0, reason="resolved", states=per_state, inbound_refresh=False,
        control="tcp://h:4040",
    ).to_json()  # fmt: skip
    assert data["transport"] == "udp" and data["control"] == "tcp://h:4040"
    assert (data["lower_s"], data["upper_s"]) == (14.8, 15.2)
    assert data["shortest_state"] == "unreplied"
    assert data["states"] == {name: s.to_json() for name, s in per_state.items()}
    assert data["inbound_refresh"] is False
    assert data["recommendations"] == to_json(udp_recommendations(per_state["unreplied"].bracket, "unreplied"))
    assert data["plan"] == to_json(udp_plan(per_state["unreplied"].bracket, 4))
    assert data["probes"][0]["state"] == "unreplied"
    assert data["recommended_keepalive_s"] == 11.0
    v6 = DiscoverResult(
        target="udp://[::1]:4040", transport="udp", bracket=per_state["unreplied"].bracket, tests=[], wall_s=1.0,
        nat=UNKNOWN, max_idle_s=7800.0, reason="resolved", states=per_state, ip_version=6,
    ).to_json()  # fmt: skip
    assert v6["plan"]["ip_version"] == 6


def test_recommendations_speak_wireguard_quic_and_sip() -> None:
    rec = to_json(udp_recommendations(bracket(29.9, 30.3), "replied"))
    assert rec == {
        "interval_s": 23.0,
        "state": "replied",
        "wireguard": {"PersistentKeepalive": 23},
        "quic": {"keep_alive_interval_s": 23.0, "max_idle_timeout_needs_keepalive_above_s": 29.9},
        "sip": {"keepalive_interval_s": 23, "stun_binding_interval_s": 23},
        "common_defaults": [
            {"name": "WireGuard PersistentKeepalive (recommended 25 s)", "interval_s": 25.0, "keeps_alive": True},
            {"name": "QUIC keep-alive (~30 s, RFC 9000 §10.1.2)", "interval_s": 30.0, "keeps_alive": None},
            {"name": "SIP outbound keepalive (24-29 s, RFC 5626)", "interval_s": 29.0, "keeps_alive": True},
            {"name": "ICE consent freshness (~5 s, RFC 7675)", "interval_s": 5.0, "keeps_alive": True},
        ],
        "design": None,  # no design probe was tried
    }
    assert to_json(udp_recommendations(bracket(60.0, None), "stream")) is None
    precise = to_json(udp_recommendations(bracket(29.91234, 30.3), "replied"))
    assert precise is not None and precise["quic"]["max_idle_timeout_needs_keepalive_above_s"] == 29.912
    only_failed = to_json(udp_recommendations(bracket(None, 2.4), "replied"))
    assert only_failed is not None and only_failed["quic"]["max_idle_timeout_needs_keepalive_above_s"] is None
    assert only_failed["interval_s"] == 0.9
    short = to_json(udp_recommendations(bracket(2.0, 2.4), "unreplied"))
    assert short is not None and short["wireguard"] == {"PersistentKeepalive": 1}
    assert short["quic"]["keep_alive_interval_s"] == 1.6


@pytest.mark.parametrize(
    ("interval", "lower", "upper", "verdict"),
    [(10.0, 10.0, 12.0, True), (12.0, 10.0, 12.0, False), (11.0, 10.0, 12.0, None), (13.0, 10.0, None, None),
     (5.0, None, 4.0, False), (3.0, None, 4.0, None)],
)  # fmt: skip
def test_keeps_alive_is_proven_refuted_or_unknown(
    interval: float, lower: float | None, upper: float | None, verdict: bool | None
) -> None:
    assert keeps_alive(interval, bracket(lower, upper)) is verdict


def test_plan_costs_each_keepalive_per_day() -> None:
    plan = to_json(udp_plan(bracket(29.9, 30.3), 4))
    # 23 s: 3756.5 cycles a day.
    cycles = 86_400 / 23.0
    assert plan["purpose"] == "keep_alive" and plan["interval_s"] == 23.0 and plan["transport"] == "udp"
    assert plan["keepalives"]["wireguard"] == {
        "packets_per_day": round(cycles),
        "bytes_per_day": round(cycles * (WIREGUARD_KEEPALIVE + 28)),
    }
    assert plan["keepalives"]["quic_ping"] == {
        "packets_per_day": round(cycles * 2),
        "bytes_per_day": round(cycles * (QUIC_PING + QUIC_ACK + 56)),
    }
    assert plan["keepalives"]["stun_binding"]["bytes_per_day"] == round(cycles * (STUN_REQUEST + STUN_RESPONSE_V4 + 56))
    v6 = to_json(udp_plan(bracket(29.9, 30.3), 6))
    assert v6["ip_version"] == 6
    assert v6["keepalives"]["stun_binding"]["bytes_per_day"] == round(cycles * (STUN_REQUEST + STUN_RESPONSE_V6 + 96))
    assert v6["keepalives"]["wireguard"]["bytes_per_day"] == round(cycles * (WIREGUARD_KEEPALIVE + 48))
    assert v6["keepalives"]["quic_ping"]["bytes_per_day"] == round(cycles * (QUIC_PING + QUIC_ACK + 96))
    none = to_json(udp_plan(bracket(30.0, None)))
    assert none == {"purpose": "detect_only", "interval_s": None, "ip_version": 4, "transport": "udp", "keepalives": {}}


def test_plan_uses_whole_seconds_where_the_protocol_takes_them() -> None:
    # 1.6 s: WireGuard and STUN take 1 s, QUIC takes 1.6 s.
    plan = to_json(udp_plan(bracket(2.0, 2.4)))
    assert plan["keepalives"]["wireguard"]["packets_per_day"] == 86_400
    assert plan["keepalives"]["quic_ping"]["packets_per_day"] == round(86_400 / 1.6 * 2)


def test_the_cheapest_udp_design_that_kept_the_binding_is_named() -> None:
    kept = {
        Design.CLIENT_ONLY: DesignOutcome(False, 1.0, 31.0, ""),
        Design.REQUEST_RESPONSE: DesignOutcome(True, 1.0, 31.0, ""),
    }
    rec = udp_recommendations(bracket(29.9, 30.3), "replied", kept)
    assert rec is not None and rec.design is Design.REQUEST_RESPONSE
    both = {**kept, Design.CLIENT_ONLY: DesignOutcome(True, 1.0, 31.0, "")}
    rec = udp_recommendations(bracket(29.9, 30.3), "replied", both)
    assert rec is not None and rec.design is Design.CLIENT_ONLY
