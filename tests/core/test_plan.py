"""The keepalive plan's arithmetic, checked against numbers worked by hand
(docs/plan.md shows the same sums)."""

from __future__ import annotations

import pytest

from probe.core.evidence import Bracket
from probe.core.model import to_json
from probe.core.plan import (
    PlanInputs,
    heartbeat_cycle,
    heartbeat_timeout,
    keepalive_cycle,
    make_plan,
    retransmission_give_up_s,
    segment_bytes,
)


def bracket(lower: float | None, upper: float | None) -> Bracket:
    return Bracket(
        lower=lower, upper=upper, consistent=True, longest_survived=lower, shortest_failed=upper, failure_mode=None
    )


def test_a_segment_is_ip_plus_tcp_plus_timestamps() -> None:
    assert segment_bytes(4) == 20 + 20 + 12
    assert segment_bytes(6) == 40 + 20 + 12


def test_a_keepalive_is_a_bare_probe_and_its_ack() -> None:
    assert keepalive_cycle(4) == (2, 104)
    assert keepalive_cycle(6) == (2, 144)


@pytest.mark.parametrize(
    ("ip", "tls", "expected"),
    [
        # ping 52+6+4, pong 52+2+4, ack 52
        (4, False, 62 + 58 + 52),
        # each data record gains 22 bytes of TLS 1.3
        (4, True, 84 + 80 + 52),
        (6, False, 82 + 78 + 72),
        (6, True, 104 + 100 + 72),
    ],
)
def test_a_heartbeat_is_ping_pong_and_an_ack(ip: int, tls: bool, expected: int) -> None:
    assert heartbeat_cycle(ip, tls) == (3, expected)


def test_linux_gives_up_on_unacknowledged_data_after_its_modelled_backoff() -> None:
    # tcp_retries2 = 15: RTO doubles from 200 ms to 120 s, then 6 more at 120 s.
    assert retransmission_give_up_s() == pytest.approx(924.6)
    assert retransmission_give_up_s(retries=5) == pytest.approx(63 * 0.2)
    assert retransmission_give_up_s(retries=9) == pytest.approx(1023 * 0.2)
    assert retransmission_give_up_s(retries=10) == pytest.approx(1023 * 0.2 + 120)


def test_heartbeat_timeout_is_ten_rtts_but_never_under_five_seconds() -> None:
    assert heartbeat_timeout(None) == 5.0
    assert heartbeat_timeout(0.05) == 5.0
    assert heartbeat_timeout(0.73) == pytest.approx(7.3)
    assert heartbeat_timeout(1.0) == pytest.approx(10.0)


def test_plan_for_a_five_minute_timeout_over_ipv4() -> None:
    plan = to_json(make_plan(PlanInputs(bracket(300.0, 310.0), rtt_s=0.05, ip_version=4, tls=False)))
    assert plan["purpose"] == "keep_alive"
    # 80% of the longest idle that survived.
    assert plan["interval_s"] == 240.0
    assert plan["keepalive"] == {
        "idle_s": 240,
        "interval_s": 60,
        "count": 3,
        "detect_s": 240 + 60 * 3,
        "packets_per_day": 360 * 2,
        "bytes_per_day": 360 * 104,
        "radio_wakeups_per_day": 360,
        "lte_energy_j_per_day": 4531,
        "kept": None,  # no design connection tried it
    }
    heartbeat = plan["heartbeat"]
    assert heartbeat["interval_s"] == 240.0 and heartbeat["timeout_s"] == 5.0
    assert heartbeat["detect_s"] == 245.0
    assert heartbeat["packets_per_day"] == 360 * 3 and heartbeat["bytes_per_day"] == 360 * 172
    assert heartbeat["mode"] == "idle"
    assert heartbeat["busy_connection_packets_per_day"] == {"fixed": 1080, "idle": 0}
    server = plan["server"]
    assert server["user_timeout_s"] == 30.0 and server["idle_session_timeout_s"] == 245.0
    assert server["held_today"] == {"pushed_s": 924.6, "idle_s": None, "idle_with_default_keepalive_s": 7875}


def test_plan_over_ipv6_with_tls_costs_more_bytes_for_the_same_packets() -> None:
    v4 = to_json(make_plan(PlanInputs(bracket(300.0, 310.0), ip_version=4, tls=False)))
    v6 = to_json(make_plan(PlanInputs(bracket(300.0, 310.0), ip_version=6, tls=True)))
    assert v6["heartbeat"]["packets_per_day"] == v4["heartbeat"]["packets_per_day"]
    assert v6["heartbeat"]["bytes_per_day"] == 360 * (104 + 100 + 72)
    assert v6["keepalive"]["bytes_per_day"] == 360 * 144
    assert v6["ip_version"] == 6 and v6["tls"] is True


def test_a_path_with_no_timeout_gets_a_detection_only_plan() -> None:
    plan = to_json(make_plan(PlanInputs(bracket(3600.0, None))))
    assert plan["purpose"] == "detect_only" and plan["interval_s"] is None
    assert plan["keepalive"]["idle_s"] == 60 and plan["keepalive"]["detect_s"] == 60 + 15 * 3
    assert plan["heartbeat"]["interval_s"] == 60.0


def test_a_path_where_even_the_shortest_idle_failed_keeps_well_below_it() -> None:
    plan = to_json(make_plan(PlanInputs(bracket(None, 10.0))))
    # Half the failed idle, then the 80% margin.
    assert plan["interval_s"] == 4.0 and plan["keepalive"]["idle_s"] == 4


def test_a_slow_path_stretches_the_heartbeat_timeout_and_what_the_server_waits() -> None:
    plan = to_json(make_plan(PlanInputs(bracket(300.0, 310.0), rtt_s=2.0)))
    assert plan["heartbeat"]["timeout_s"] == 20.0 and plan["heartbeat"]["detect_s"] == 260.0
    assert plan["server"]["user_timeout_s"] == 60.0 and plan["server"]["idle_session_timeout_s"] == 260.0


def test_detect_times_are_rounded_to_milliseconds() -> None:
    plan = to_json(make_plan(PlanInputs(bracket(4.04, 4.4), rtt_s=0.6789)))
    # interval 3.2, timeout ceil(67.89) / 10 = 6.8
    assert plan["heartbeat"]["detect_s"] == 10.0 and plan["server"]["idle_session_timeout_s"] == 10.0
    tiny = to_json(make_plan(PlanInputs(bracket(1.0, 1.2))))
    assert tiny["interval_s"] == 0.8 and tiny["keepalive"]["idle_s"] == 1  # never below 1 s
