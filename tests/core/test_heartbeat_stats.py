"""Heartbeat configuration errors and statistics, exactly."""

from __future__ import annotations

import pytest

from probe.core.heartbeat import Heartbeat, HeartbeatConfig, percentile
from probe.core.model import to_json


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval_s": 1, "kind": "smoke"}, "heartbeat kind must be one of ping, message"),
        ({"interval_s": 1, "mode": "lazy"}, "heartbeat mode must be one of fixed, idle"),
        ({"interval_s": 0}, "heartbeat interval must be positive"),
        ({"interval_s": -1}, "heartbeat interval must be positive"),
    ],
)
def test_bad_configs_say_what_is_allowed(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        HeartbeatConfig(**kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_the_answer_timeout_defaults_to_the_interval_at_most_ten_seconds() -> None:
    assert HeartbeatConfig(3).answer_timeout_s == 3
    assert HeartbeatConfig(30).answer_timeout_s == 10.0
    assert HeartbeatConfig(30, timeout_s=20).answer_timeout_s == 20
    assert HeartbeatConfig(0.5, kind="message", mode="idle").kind == "message"


def test_nearest_rank_percentile() -> None:
    assert percentile([5.0], 0.95) == 5.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0
    assert percentile([float(v) for v in range(1, 21)], 0.95) == 19.0
    assert percentile([float(v) for v in range(1, 21)], 0.0) == 1.0
    assert percentile([1.0, 2.0], 1.0) == 2.0


def test_stats_without_answers_are_null() -> None:
    beat = Heartbeat(HeartbeatConfig(1), started=0.0)
    beat.send(1.0)
    assert to_json(beat.stats()) == {
        "sent": 1, "answered": 0, "missed": 0, "rtt_min_s": None, "rtt_median_s": None, "rtt_p95_s": None,
        "rtt_max_s": None,
    }  # fmt: skip


def test_stats_round_to_tens_of_microseconds() -> None:
    beat = Heartbeat(HeartbeatConfig(1), started=0.0)
    for n, rtt in enumerate([0.0101234, 0.0301234, 0.0201234]):
        sent = beat.send(float(n))
        assert beat.answered(n + rtt, sent) == pytest.approx(rtt)
    assert to_json(beat.stats()) == {
        "sent": 3, "answered": 3, "missed": 0, "rtt_min_s": 0.01012, "rtt_median_s": 0.02012, "rtt_p95_s": 0.03012,
        "rtt_max_s": 0.03012,
    }  # fmt: skip


def test_sending_records_time_and_traffic() -> None:
    beat = Heartbeat(HeartbeatConfig(2, mode="idle"), started=10.0)
    assert beat.last_traffic == 10.0 and beat.due() == 12.0 and beat.next_wakeup() == 12.0
    assert beat.send(12.5) == 1 and beat.send(13.0) == 2
    assert beat.last_sent == 13.0 and beat.last_traffic == 13.0 and beat.outstanding == {1: 12.5, 2: 13.0}
    assert beat.deadline() == 14.5 and beat.next_wakeup() == 14.5
    assert beat.answered(13.5) == pytest.approx(1.0)  # the oldest
    assert beat.answered(13.6, 9) is None and beat.last_traffic == 13.6
    assert not beat.timed_out(14.9) and beat.timed_out(15.0) and beat.missed == 1


def test_an_answer_with_nothing_outstanding_changes_nothing() -> None:
    beat = Heartbeat(HeartbeatConfig(2), started=0.0)
    assert beat.answered(1.0) is None and beat.last_traffic == 0.0
