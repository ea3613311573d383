"""Inbound refresh: the verdict from beats asked, confirmed and arrived (simulated clock)."""

from __future__ import annotations

import pytest

from probe.core.udp_refresh import LOST_IN_A_ROW, MAX_BEAT_S, MIN_BEAT_S, RefreshEvidence, beat_interval


@pytest.mark.parametrize(("survived", "beat"), [(None, 0.25), (0.0, 0.25), (0.5, 0.25), (2.0, 0.5), (40.0, 10.0),
                                                (60.0, 15.0), (600.0, 15.0)])  # fmt: skip
def test_beats_come_at_a_quarter_of_what_survived_within_bounds(survived: float | None, beat: float) -> None:
    assert beat_interval(survived) == beat
    assert MIN_BEAT_S <= beat <= MAX_BEAT_S


def beats(evidence: RefreshEvidence, times: list[float], arrive: bool, confirm: bool = True) -> None:
    for t in times:
        n = len(evidence.asked) + 1
        evidence.ask(n, t)
        if confirm:
            evidence.confirmed(n)
        if arrive:
            evidence.arrived(t + 0.01)


def test_beats_arriving_after_the_longest_timeout_prove_refresh() -> None:
    ev = RefreshEvidence(silent_since=10.0)
    beats(ev, [11.0, 12.0, 13.0], arrive=True)
    assert ev.longest_silence == pytest.approx(3.01)
    # Silence of 3 s is not past 6 s + grace: undecided.
    assert ev.verdict(13.5, longest_upper_s=6.0, grace_s=1.0) is None
    beats(ev, [17.0, 17.5], arrive=True)
    assert ev.verdict(17.6, longest_upper_s=6.0, grace_s=1.0) is True


def test_confirmed_beats_lost_in_a_row_mean_no_refresh() -> None:
    ev = RefreshEvidence(silent_since=0.0)
    beats(ev, [1.0, 2.0], arrive=True)
    beats(ev, [3.0, 4.0], arrive=False)
    # The second loss is not overdue until its grace has passed.
    assert ev.lost_since_last_arrival(4.5, 1.0) == 1
    assert ev.verdict(4.5, 6.0, 1.0) is None
    assert ev.lost_since_last_arrival(5.0, 1.0) == LOST_IN_A_ROW
    assert ev.verdict(5.0, 6.0, 1.0) is False


def test_unconfirmed_beats_and_a_late_arrival_do_not_count_as_lost() -> None:
    ev = RefreshEvidence(silent_since=0.0)
    beats(ev, [1.0, 2.0, 3.0], arrive=False, confirm=False)
    assert ev.verdict(10.0, 6.0, 1.0) is None
    ev.confirmed(99)  # never asked: ignored
    assert ev.sent == set()
    beats(ev, [4.0, 5.0], arrive=False)
    ev.arrived(5.5)  # one came after all: the losses before it are forgiven
    assert ev.lost_since_last_arrival(10.0, 1.0) == 0
    ev.arrived(5.2)  # an older arrival never moves the last one back
    assert ev.last_arrival == 5.5


def test_no_verdict_without_a_measured_timeout() -> None:
    ev = RefreshEvidence(silent_since=0.0)
    beats(ev, [100.0], arrive=True)
    assert ev.verdict(200.0, None, 1.0) is None
    assert ev.longest_silence == pytest.approx(100.01)
    assert RefreshEvidence(0.0).longest_silence is None


def test_the_verdict_is_due_once_beats_past_the_longest_timeout_had_time() -> None:
    ev = RefreshEvidence(silent_since=2.0)
    assert ev.decided_by(6.0, 0.5, 0.25) == 2.0 + 6.0 + 1.0 + LOST_IN_A_ROW * 0.25


def test_the_silence_must_pass_the_longest_timeout_plus_the_grace() -> None:
    ev = RefreshEvidence(silent_since=0.0)
    ev.arrived(6.5)  # past the timeout, not past it plus the grace
    assert ev.verdict(6.6, 6.0, 1.0) is None
    ev.arrived(7.0)  # exactly at it: not yet
    assert ev.verdict(7.1, 6.0, 1.0) is None
    ev.arrived(7.25)
    assert ev.verdict(7.3, 6.0, 1.0) is True


def test_losses_count_from_the_start_when_nothing_ever_arrived() -> None:
    ev = RefreshEvidence(silent_since=0.0)
    beats(ev, [1.0, 2.0], arrive=False)
    assert ev.lost_since_last_arrival(3.0, 1.0) == 2
    assert ev.verdict(3.0, 6.0, 1.0) is False


def test_a_beat_asked_at_the_moment_of_the_last_arrival_is_not_after_it() -> None:
    ev = RefreshEvidence(silent_since=0.0)
    beats(ev, [2.0], arrive=False)
    ev.arrived(2.0)
    assert ev.lost_since_last_arrival(10.0, 1.0) == 0
