"""Heartbeat scheduling on a simulated clock (seconds are virtual)."""

from __future__ import annotations

import pytest

from probe.core.heartbeat import Heartbeat, HeartbeatConfig, percentile


def test_fixed_mode_keeps_its_clock_whatever_else_happens() -> None:
    hb = Heartbeat(HeartbeatConfig(10.0, mode="fixed"), started=0.0)
    assert hb.due() == 10.0
    hb.traffic(7.0)  # other traffic does not move a fixed clock
    assert hb.due() == 10.0
    hb.send(10.0)
    assert hb.due() == 20.0


def test_idle_mode_waits_for_silence() -> None:
    hb = Heartbeat(HeartbeatConfig(10.0, mode="idle"), started=0.0)
    hb.traffic(7.0)
    assert hb.due() == 17.0
    hb.send(17.0)
    hb.answered(17.2)
    assert hb.due() == pytest.approx(27.2)


def test_answers_give_rtt_statistics() -> None:
    hb = Heartbeat(HeartbeatConfig(1.0), started=0.0)
    for n, rtt in enumerate([0.010, 0.030, 0.020, 0.100]):
        hb.send(float(n))
        assert hb.answered(n + rtt) == pytest.approx(rtt)
    stats = hb.stats()
    assert stats.answered == 4 and stats.missed == 0 and stats.all_answered
    assert stats.rtt_min_s == 0.01 and stats.rtt_max_s == 0.1
    assert stats.rtt_median_s == pytest.approx(0.025)
    assert stats.rtt_p95_s == 0.1


def test_an_unanswered_heartbeat_times_out() -> None:
    # Timeline: sent at 5, timeout 2 s: still fine at 6.9, timed out at 7.
    hb = Heartbeat(HeartbeatConfig(5.0, timeout_s=2.0), started=0.0)
    hb.send(5.0)
    assert hb.next_wakeup() == 7.0
    assert not hb.timed_out(6.9)
    assert hb.timed_out(7.0)
    assert hb.stats().missed == 1 and not hb.stats().all_answered


def test_default_answer_timeout_is_the_interval_capped_at_10s() -> None:
    assert HeartbeatConfig(3.0).answer_timeout_s == 3.0
    assert HeartbeatConfig(60.0).answer_timeout_s == 10.0


def test_percentile_nearest_rank() -> None:
    assert percentile([5.0, 1.0, 3.0], 0.5) == 3.0
    assert percentile(list(map(float, range(1, 101))), 0.95) == 95.0


@pytest.mark.parametrize("kwargs", [{"kind": "smoke"}, {"mode": "sometimes"}])
def test_bad_config_is_rejected(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        HeartbeatConfig(1.0, **kwargs)  # type: ignore[arg-type]
