"""The JSON field mappings, compared whole: a renamed, dropped or mis-rounded
field is a broken contract for every script that reads it."""

from __future__ import annotations

from typing import Any

import pytest

from probe.core.evidence import Evidence, FailureMode, IdleTest, Outcome, Source
from probe.core.model import to_json
from probe.core.nat import UNKNOWN, NatFacts
from probe.core.plan import PlanInputs, make_plan
from probe.core.recommend import recommendations, recommended_interval
from probe.core.results import NO_CONNECTIONS, Connections, DiscoverResult
from tests.core.brackets import bracket


def test_an_idle_test_maps_every_field_with_its_rounding() -> None:
    test = IdleTest(
        conn=7, idle_s=12.34567, outcome=Outcome.FAILED, failure_mode=FailureMode.SILENT_DROP,
        idle_since=1.23456, asked_at=13.5804, result_at=14.58049, rtt_s=0.0123456, late=True, source=Source.DEADLINE,
    )  # fmt: skip
    assert test.to_json() == {
        "conn": 7,
        "idle_s": 12.346,
        "outcome": "failed",
        "failure_mode": "silent_drop",
        "source": "deadline",
        "late": True,
        "state": None,
        "timings": {"idle_since_s": 1.235, "asked_at_s": 13.58, "result_at_s": 14.58, "rtt_s": 0.0123},
    }


def test_an_idle_test_without_optional_timings_maps_them_to_null() -> None:
    assert IdleTest(conn=0, idle_s=1.0, outcome=Outcome.SURVIVED).to_json() == {
        "conn": 0,
        "idle_s": 1.0,
        "outcome": "survived",
        "failure_mode": None,
        "source": "push",
        "late": False,
        "state": None,
        "timings": {"idle_since_s": 0.0, "asked_at_s": None, "result_at_s": 0.0, "rtt_s": None},
    }


def _result(**extra: Any) -> DiscoverResult:
    evidence = Evidence()
    evidence.add(IdleTest(1, 4.04449, Outcome.SURVIVED, result_at=5.0))
    evidence.add(IdleTest(2, 4.45551, Outcome.FAILED, FailureMode.RESET, result_at=3.0))
    return DiscoverResult(
        target="tcp://h:4040", transport="tcp", bracket=evidence.bracket(), tests=evidence.tests, wall_s=7.12345,
        nat=NatFacts("a:1", "b:2", True, False), max_idle_s=7800.0,
        reason="resolved", server="natprobe 0.1.0", connections=Connections(3, 3, 63, 63, True, {"max_per_ip": 8.0}),
        target_width_s=0.50049, grace_s=1.00049, rtt_s=1.0, **extra,
    )  # fmt: skip


def test_a_discovery_maps_every_field() -> None:
    result = _result(
        after_expiry={"outcome": "blackhole"}, server_view={"unacknowledged_pushes": 2}, ip_version=6, tls=True,
        total_s=9.87654,
    )  # fmt: skip
    data = result.to_json()
    bracket = result.bracket
    assert data == {
        "schema": "natprobe.discover/1",
        "target": "tcp://h:4040",
        "transport": "tcp",
        "lower_s": 4.044,
        "upper_s": 4.456,
        "estimate_s": 4.25,
        "width_s": 0.411,
        "failure_mode": "reset",
        "consistent": True,
        "longest_survived_s": 4.044,
        "shortest_failed_s": 4.456,
        "evidence": "server_push",
        "wall_s": 7.123,
        "total_s": 9.877,
        "reason": "resolved",
        "interrupted": False,
        "max_idle_s": 7800.0,
        "target_width_s": 0.5,
        "grace_s": 1.0,
        "rtt_s": 1.0,
        "server": "natprobe 0.1.0",
        "proxy": None,
        "nat": {"local": "a:1", "observed": "b:2", "detected": True, "port_preserved": False},
        "connections": {
            "max_open": 3,
            "opened": 3,
            "asked": 63,
            "pool": 63,
            "limited_by_server": True,
            "server_limits": {"max_per_ip": 8.0},
            "designs": 0,
        },
        "recommended_keepalive_s": 3.2,
        "recommendations": to_json(recommendations(bracket, "reset")),
        "plan": to_json(make_plan(PlanInputs(bracket, 1.0, 6, True))),
        "control": None,
        "states": None,
        "shortest_state": None,
        "inbound_refresh": None,
        "after_expiry": {"outcome": "blackhole"},
        "designs": None,
        "middlebox": None,
        "server_view": {"unacknowledged_pushes": 2},
        # ordered by when each result came
        "probes": [result.tests[1].to_json(), result.tests[0].to_json()],
    }


def test_a_discovery_without_total_reports_its_wall_time_and_nulls() -> None:
    evidence = Evidence()
    data = DiscoverResult(
        target="t", transport="ws", bracket=evidence.bracket(), tests=[], wall_s=1.0, nat=UNKNOWN, max_idle_s=10.0,
        reason="interrupted", interrupted=True,
    ).to_json()  # fmt: skip
    assert data["total_s"] == 1.0 and data["interrupted"] is True and data["transport"] == "ws"
    assert [data[k] for k in ("lower_s", "upper_s", "estimate_s", "width_s", "failure_mode")] == [None] * 5
    assert [data[k] for k in ("target_width_s", "grace_s", "rtt_s", "server", "after_expiry")] == [None] * 5
    assert data["server_view"] == {} and data["connections"] == to_json(NO_CONNECTIONS) and data["probes"] == []
    assert data["recommendations"] is None and data["recommended_keepalive_s"] is None


@pytest.mark.parametrize(
    ("lower", "upper", "interval"),
    [
        (300.0, 310.0, 240.0),  # whole seconds at 10 s and above, rounded down
        (12.9, 13.0, 10.0),
        (12.4, 13.0, 9.9),  # tenths below 10 s
        (4.0, 4.4, 3.2),
        (None, 10.0, 4.0),  # nothing survived: half the failure, then the margin
        (0.0, 1.0, 0.4),
        (100.0, None, None),  # nothing failed: no interval
        (None, None, None),
    ],
)
def test_recommended_interval(lower: float | None, upper: float | None, interval: float | None) -> None:
    assert recommended_interval(bracket(lower, upper)) == interval


def test_recommendations_for_a_silent_drop() -> None:
    assert to_json(recommendations(bracket(300.0, 310.0), "silent_drop")) == {
        "interval_s": 240.0,
        "linux_sysctl": {
            "net.ipv4.tcp_keepalive_time": 240,
            "net.ipv4.tcp_keepalive_intvl": 60,
            "net.ipv4.tcp_keepalive_probes": 3,
        },
        "socket_options": {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 240, "TCP_KEEPINTVL": 60, "TCP_KEEPCNT": 3},
        "websocket_ping_interval_s": 240.0,
        "proxy": None,
        "design": None,
    }


def test_recommendations_keep_whole_second_floors_and_probe_caps() -> None:
    options = to_json(recommendations(bracket(300.0, 310.0), None))
    assert options is not None
    # The kernel takes whole seconds: integers, not floats that print alike.
    assert all(type(v) is int for v in options["socket_options"].values())  # type: ignore[attr-defined]
    assert all(type(v) is int for v in options["linux_sysctl"].values())  # type: ignore[attr-defined]
    short = to_json(recommendations(bracket(1.0, 1.2), None))
    assert short is not None and short["interval_s"] == 0.8
    assert short["socket_options"] == {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 1, "TCP_KEEPINTVL": 1, "TCP_KEEPCNT": 3}
    long = to_json(recommendations(bracket(3000.0, 3100.0), None))
    assert long is not None and long["socket_options"]["TCP_KEEPINTVL"] == 75  # type: ignore[index]  # capped
    assert to_json(recommendations(bracket(5.0, None), None)) is None


def test_recommendations_name_the_proxy_setting_for_closes_and_resets() -> None:
    closed = to_json(recommendations(bracket(60.0, 61.0), "closed"))
    reset = to_json(recommendations(bracket(60.0, 61.0), "reset"))
    assert closed is not None and reset is not None
    assert closed["proxy"] == (
        "flows were closed, as proxies and L7 load balancers do: raise their idle timeout above your "
        "heartbeat (nginx proxy_read_timeout / proxy_send_timeout, HAProxy timeout client/server/tunnel, "
        "AWS ALB idle_timeout.timeout_seconds), or send heartbeats the server answers"
    )
    assert reset["proxy"] == (
        "flows were reset: a load balancer or firewall configured to reset idle flows "
        "(e.g. Azure LB with TCP reset); raise its idle timeout or keep heartbeats below it"
    )


def test_the_rtt_keeps_five_decimals() -> None:
    data = _result().to_json()
    assert data["rtt_s"] == 1.0 and isinstance(data["rtt_s"], float)
    fine = DiscoverResult(
        target="t", transport="tcp", bracket=Evidence().bracket(), tests=[], wall_s=1.0, nat=UNKNOWN, max_idle_s=1.0,
        reason="budget", rtt_s=0.0012345678,
    ).to_json()  # fmt: skip
    assert fine["rtt_s"] == 0.00123


def test_a_discovery_through_a_proxy_names_it() -> None:
    assert _result(proxy="socks5h://u@198.18.0.9:1080").to_json()["proxy"] == "socks5h://u@198.18.0.9:1080"
