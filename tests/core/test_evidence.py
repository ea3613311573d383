from __future__ import annotations

from probe.core.evidence import Evidence, FailureMode, IdleTest, Outcome


def _ev(*tests: tuple[float, bool]) -> Evidence:
    evidence = Evidence()
    for idle, ok in tests:
        evidence.add(
            IdleTest(0, idle, Outcome.SURVIVED if ok else Outcome.FAILED, None if ok else FailureMode.SILENT_DROP)
        )
    return evidence


def test_consistent_bracket_is_longest_survival_and_shortest_failure() -> None:
    b = _ev((10, True), (20, True), (25, False), (40, False)).bracket()
    assert (b.lower, b.upper, b.consistent) == (20, 25, True)
    assert b.estimate == 22.5
    assert b.failure_mode is FailureMode.SILENT_DROP


def test_no_failure_leaves_upper_open() -> None:
    b = _ev((10, True), (20, True)).bracket()
    assert (b.lower, b.upper, b.width) == (20, None, None)


def test_contradictions_widen_the_bracket_and_are_flagged() -> None:
    # Survived 27 although 25 failed: the blurred zone 25..27 must be inside.
    b = _ev((20, True), (25, False), (27, True), (30, False)).bracket()
    assert not b.consistent
    assert (b.lower, b.upper) == (20, 30)
    assert (b.longest_survived, b.shortest_failed, b.outer_upper) == (27, 25, 30)


def test_contradiction_with_no_failure_above_extends_to_the_longest_survival() -> None:
    b = _ev((20, True), (25, False), (27, True)).bracket()
    assert (b.lower, b.upper, b.consistent, b.outer_upper) == (20, 27, False, None)


def test_a_survival_equal_to_a_failure_is_a_contradiction_and_widens_the_bracket() -> None:
    from probe.core.evidence import Evidence, FailureMode, IdleTest, Outcome

    evidence = Evidence()
    evidence.add(IdleTest(0, 3.0, Outcome.SURVIVED))
    evidence.add(IdleTest(1, 5.0, Outcome.SURVIVED))
    evidence.add(IdleTest(2, 5.0, Outcome.FAILED, FailureMode.SILENT_DROP))
    evidence.add(IdleTest(3, 6.0, Outcome.FAILED, FailureMode.SILENT_DROP))
    b = evidence.bracket()
    assert b.consistent is False
    # Below every failure: 3.0 (5.0 is not below 5.0); above every survival: 6.0.
    assert (b.lower, b.upper, b.outer_upper) == (3.0, 6.0, 6.0)
    assert (b.longest_survived, b.shortest_failed) == (5.0, 5.0)
