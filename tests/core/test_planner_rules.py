"""The planner's rules one at a time, on hand-built states in virtual time.

Ages are multiples of 1/16 s so that every comparison is exact in binary.
"""

from __future__ import annotations

import pytest

from probe.core.evidence import FailureMode, IdleTest, Outcome
from probe.core.planner import (
    Close,
    ConnState,
    ConnView,
    Finish,
    Open,
    Planner,
    PlannerConfig,
    Probe,
    _Round,
)
from probe.core.pools import tcp_planner_pool
from probe.lab.simnat import SimPath, simulate

NOW = 100.0


def planner_with_pool(ages: list[float], **config: float) -> Planner:
    """A started planner whose idle connections have these ages at NOW."""
    planner = Planner(PlannerConfig(**config))  # type: ignore[arg-type]
    planner.started_at = 0.0
    planner._last_open = NOW  # no new connections in the way
    for conn, age in enumerate(ages):
        planner.conns[conn] = ConnView(conn, ConnState.IDLE, idle_since=NOW - age, rx_at=NOW - age)
    planner._next_id = len(ages)
    return planner


def probed(actions: list[object]) -> list[int]:
    return sorted(a.conn for a in actions if isinstance(a, Probe))  # type: ignore[attr-defined]


def survived(planner: Planner, idle: float) -> None:
    planner.evidence.add(IdleTest(900, idle, Outcome.SURVIVED))


def failed(planner: Planner, idle: float, mode: FailureMode = FailureMode.SILENT_DROP) -> None:
    planner.evidence.add(IdleTest(901, idle, Outcome.FAILED, mode))


SIXTEENTHS = [10 + k / 16 for k in range(17)]  # 10.0, 10.0625, ..., 11.0


def test_refine_probes_ages_spaced_nine_twentieths_of_the_width_from_the_youngest_up() -> None:
    # Bracket (10, 11), width 0.5: probes start a quarter width above 10
    # (10.125) and are at least 0.225 apart: 10.125, 10.375, 10.625, 10.875.
    planner = planner_with_pool(SIXTEENTHS, resolution_s=0.5)
    survived(planner, 10.0)
    failed(planner, 11.0)
    actions = planner.tick(NOW)
    assert probed(actions) == [2, 6, 10, 14]
    assert all(planner.conns[c].state is ConnState.PROBING for c in (2, 6, 10, 14))
    assert planner.conns[3].state is ConnState.IDLE


def test_refine_adds_the_oldest_candidate_when_the_gap_it_leaves_is_wider_than_the_target() -> None:
    # Width 0.125: step 0.05625, so every other sixteenth from 10.0625 up is
    # chosen ... up to 10.9375 (k = 15) which is also the oldest candidate.
    planner = planner_with_pool(SIXTEENTHS, resolution_s=0.125)
    survived(planner, 10.0)
    failed(planner, 11.0)
    assert probed(planner.tick(NOW)) == list(range(1, 16))
    # Sparse ages: 10.25 and 10.5 are chosen by spacing; the oldest (10.875)
    # is added since 11 - 10.5 leaves more than the 0.25 wanted.
    sparse = planner_with_pool([10.25, 10.5, 10.875], resolution_s=0.25)
    survived(sparse, 10.0)
    failed(sparse, 11.0)
    assert probed(sparse.tick(NOW)) == [0, 1, 2]
    # ... but not when the gap is already narrow enough.
    narrow = planner_with_pool([10.25, 10.8125, 10.875], resolution_s=0.25)
    survived(narrow, 10.0)
    failed(narrow, 11.0)
    assert probed(narrow.tick(NOW)) == [0, 1]


def test_refine_skips_connections_already_idle_beyond_a_known_failure() -> None:
    planner = planner_with_pool([10.5, 11.0, 12.0], resolution_s=0.5)
    survived(planner, 10.0)
    failed(planner, 11.0)
    assert probed(planner.tick(NOW)) == [0]


def test_refine_waits_for_young_connections_to_age_into_the_bracket() -> None:
    planner = planner_with_pool([9.0], resolution_s=0.5)
    survived(planner, 10.0)
    failed(planner, 11.0)
    assert probed(planner.tick(NOW)) == []
    # Woken when it reaches 10.125: a quarter width above what survived.
    assert planner.next_wakeup() == pytest.approx(NOW + 1.125)
    assert probed(planner.tick(NOW + 1.125)) == [0]


def test_a_resolved_bracket_finishes_and_closes_every_connection() -> None:
    planner = planner_with_pool([1.0, 2.0], resolution_s=0.5)
    survived(planner, 10.0)
    failed(planner, 10.5)
    actions = planner.tick(NOW)
    assert actions == [Close(0), Close(1), Finish("resolved")]
    assert planner.finished == "resolved" and planner.conns == {} and planner.next_wakeup() is None
    assert planner.tick(NOW + 1) == []


def test_a_bracket_one_hair_wider_than_the_target_is_not_resolved() -> None:
    planner = planner_with_pool([1.0], resolution_s=0.5)
    survived(planner, 10.0)
    failed(planner, 10.5 + 1e-6)
    assert Finish("resolved") not in planner.tick(NOW)


def test_the_target_width_is_two_percent_of_what_survived_at_least_half_a_second() -> None:
    planner = Planner(PlannerConfig())
    survived(planner, 100.0)
    assert planner.target_width(planner.bracket()) == pytest.approx(2.0)
    small = Planner(PlannerConfig())
    survived(small, 10.0)
    assert small.target_width(small.bracket()) == 0.5
    assert Planner(PlannerConfig()).target_width(Planner(PlannerConfig()).bracket()) == 0.5
    assert Planner(PlannerConfig(resolution_s=3.0)).target_width(planner.bracket()) == 3.0


def test_expect_min_finishes_as_soon_as_a_failure_is_below_it() -> None:
    planner = planner_with_pool([1.0], expect_min_s=50.0)
    failed(planner, 49.0)
    assert planner.tick(NOW)[-1] == Finish("expect_min")
    at_the_limit = planner_with_pool([1.0], expect_min_s=50.0)
    failed(at_the_limit, 50.0)
    assert Finish("expect_min") not in at_the_limit.tick(NOW)


def test_budget_finishes_exactly_at_its_end_even_while_probing() -> None:
    planner = planner_with_pool([5.0], budget_s=100.0)
    planner.conns[0].state = ConnState.PROBING
    planner.conns[0].probe_at = NOW - 0.01
    assert Finish("budget") not in planner.tick(99.999)
    assert planner.next_wakeup() is not None and planner.next_wakeup() <= 100.0 + 1e-9
    assert planner.tick(100.0)[-1] == Finish("budget")


def test_max_idle_finishes_once_that_idle_survived() -> None:
    planner = planner_with_pool([1.0], max_idle_s=60.0)
    survived(planner, 60.0 - 1e-12)
    assert planner.tick(NOW)[-1] == Finish("max_idle")
    short = planner_with_pool([1.0], max_idle_s=60.0)
    survived(short, 59.9)
    assert Finish("max_idle") not in short.tick(NOW)


def test_contradictions_keep_testing_a_while_then_finish_inconsistent() -> None:
    # A survival above a failure. The extra time is the larger of two graces
    # and (wall_factor - 1) x longest survival + wall_slack: 0.1 x 20 + 2 = 4 s.
    planner = planner_with_pool([1.0])
    failed(planner, 15.0)
    survived(planner, 20.0)
    failed(planner, 21.0)
    planner.tick(NOW)
    assert planner.finished is None and planner._inconsistent_until == pytest.approx(NOW + 4.0)
    assert planner.tick(NOW + 3.99) == [] or planner.finished is None
    assert planner.tick(NOW + 4.0)[-1] == Finish("inconsistent")


def test_a_deadline_failure_is_charged_the_longest_idle_measure() -> None:
    # Opened at 10 but the welcome came at 9.5: a proxy that counts from the
    # last data *in* has seen 0.5 s more idle. Probed at 20, nothing by 21.
    planner = Planner(PlannerConfig(max_conns=2, grace_s=1.0))
    planner.start(0.0)
    planner.opened(0, 10.0, rx_at=9.5)
    planner.conns[0].state = ConnState.IDLE
    planner._probe(_Round(20.0), planner.conns[0])
    planner.tick(21.0)
    (test,) = planner.evidence.tests
    assert test.outcome is Outcome.FAILED and test.source == "deadline"
    assert test.idle_s == pytest.approx(10.5)
    assert planner.conns[0].state is ConnState.LINGER
    # The server then says it measured more: the failure takes the larger.
    planner.pushed(0, 10.75, 21.1)
    assert test.idle_s == pytest.approx(10.75)
    planner.pushed(0, 3.0, 21.2)
    assert test.idle_s == pytest.approx(10.75)


def test_a_reported_idle_above_the_clients_measure_charges_the_failure() -> None:
    planner = Planner(PlannerConfig(max_conns=2, grace_s=1.0))
    planner.start(0.0)
    planner.opened(0, 10.0)
    planner._probe(_Round(20.0), planner.conns[0])
    planner.pushed(0, 10.4, 20.05)  # the server pushed after 10.4 s of idle
    planner.tick(21.0)
    assert planner.evidence.tests[0].idle_s == pytest.approx(10.4)


def test_a_late_push_turns_the_failure_into_a_late_survival_with_the_servers_idle() -> None:
    planner = Planner(PlannerConfig(max_conns=2, grace_s=1.0))
    planner.start(0.0)
    planner.opened(0, 10.0)
    planner._probe(_Round(20.0), planner.conns[0])
    planner.tick(21.0)
    planner.arrived(0, 10.02, 21.5)
    (test,) = planner.evidence.tests
    assert (test.outcome, test.failure_mode, test.late, test.idle_s) == (Outcome.SURVIVED, None, True, 10.02)
    view = planner.conns[0]
    assert view.state is ConnState.IDLE and view.idle_since == 21.5 and view.rx_at == 21.5
    assert view.probe_at is None and view.server_idle_s is None and view.test is None


def test_an_arrival_without_a_server_idle_uses_the_clients_measure() -> None:
    planner = Planner(PlannerConfig(max_conns=2))
    planner.start(0.0)
    planner.opened(0, 10.0)
    planner._probe(_Round(20.0), planner.conns[0])
    planner.arrived(0, None, 20.3)
    (test,) = planner.evidence.tests
    assert test.outcome is Outcome.SURVIVED and test.idle_s == pytest.approx(10.0) and test.source == "push"
    assert test.asked_at == 20.0 and test.result_at == 20.3 and test.idle_since == 10.0


def test_an_unasked_push_on_an_idle_connection_counts_as_a_survival() -> None:
    planner = Planner(PlannerConfig(max_conns=2))
    planner.start(0.0)
    planner.opened(0, 10.0)
    planner.arrived(0, 30.0, 40.0)
    (test,) = planner.evidence.tests
    assert test.outcome is Outcome.SURVIVED and test.idle_s == 30.0 and test.asked_at is None


def test_arrivals_on_unknown_or_opening_connections_change_nothing() -> None:
    planner = Planner(PlannerConfig(max_conns=3))
    planner.start(0.0)
    planner.arrived(77, 1.0, 1.0)
    assert planner.conns[0].state is ConnState.OPENING
    planner.arrived(0, 1.0, 1.0)
    assert planner.evidence.tests == [] and planner.conns[0].state is ConnState.OPENING


def test_a_connection_that_dies_while_idle_fails_at_its_age_from_the_last_data_in() -> None:
    planner = Planner(PlannerConfig(max_conns=2))
    planner.start(0.0)
    planner.opened(0, 10.0, rx_at=9.75)
    planner.ended(0, FailureMode.RESET, 30.0)
    (test,) = planner.evidence.tests
    assert (test.outcome, test.failure_mode, test.source) == (Outcome.FAILED, FailureMode.RESET, "death")
    assert test.idle_s == pytest.approx(20.25) and 0 not in planner.conns


def test_a_connection_that_dies_while_probed_fails_at_its_age_when_probed() -> None:
    planner = Planner(PlannerConfig(max_conns=2))
    planner.start(0.0)
    planner.opened(0, 10.0)
    planner._probe(_Round(20.0), planner.conns[0])
    planner.ended(0, FailureMode.CLOSED, 20.4)
    assert planner.evidence.tests[0].idle_s == pytest.approx(10.0)


def test_a_silent_loss_that_later_ends_records_how() -> None:
    planner = Planner(PlannerConfig(max_conns=2, grace_s=1.0))
    planner.start(0.0)
    planner.opened(0, 10.0)
    planner._probe(_Round(20.0), planner.conns[0])
    planner.tick(21.0)
    planner.ended(0, FailureMode.RESET, 21.5)
    (test,) = planner.evidence.tests
    assert test.failure_mode is FailureMode.RESET and test.source == "deadline"
    planner.ended(5, FailureMode.RESET, 22.0)  # unknown: ignored
    assert len(planner.evidence.tests) == 1


def test_lingering_failures_close_after_the_linger_time() -> None:
    planner = Planner(PlannerConfig(max_conns=3, grace_s=1.0, linger_s=2.0))
    planner.start(0.0)
    planner.opened(0, 10.0)
    planner._probe(_Round(20.0), planner.conns[0])
    planner.tick(21.0)
    assert planner.conns[0].linger_until == 23.0
    assert Close(0) not in planner.tick(22.99)
    assert Close(0) in planner.tick(23.0) and 0 not in planner.conns


def test_the_pool_opens_connections_at_growing_gaps_up_to_its_cap() -> None:
    planner = Planner(PlannerConfig(max_conns=4, open_gap_abs_s=0.5, open_gap_frac=0.5))
    assert planner.start(0.0) == [Open(0)]
    assert planner.next_wakeup() == pytest.approx(0.5)
    assert planner.tick(0.49) == []
    assert planner.tick(0.5) == [Open(1)]
    # The gap is now half the time elapsed since the start: 0.5 s, then 0.5 x 1.0.
    assert planner.tick(1.0) == [Open(2)]
    assert planner.next_wakeup() == pytest.approx(1.5)
    assert planner.tick(1.5) == [Open(3)]
    assert planner.tick(100.0) == [] or all(not isinstance(a, Open) for a in planner.tick(100.0))
    assert planner.stats.opened == 4 and planner.stats.max_open == 4


def test_a_failed_open_frees_its_place() -> None:
    planner = Planner(PlannerConfig(max_conns=2, open_gap_abs_s=0.1))
    planner.start(0.0)
    planner.open_failed(0, 0.05)
    assert 0 not in planner.conns
    assert planner.tick(0.1) == [Open(1)]


def test_the_scout_probes_the_oldest_connection_when_the_time_goal_says() -> None:
    # Nothing measured yet: the first scout is due at wall_slack - suspect = 1.9 s.
    planner = Planner(PlannerConfig(max_conns=2))
    planner.start(0.0)
    planner.opened(0, 0.0)
    assert planner.next_scout == (0, pytest.approx(1.9))
    assert Probe(0) not in planner.tick(1.89)
    assert Probe(0) in planner.tick(1.9)
    assert planner.stats.probes == 1 and planner.conns[0].scout is True and planner.next_scout is None


def test_after_a_survival_the_scout_aims_at_one_point_one_times_it_plus_the_slack() -> None:
    planner = planner_with_pool([30.0, 5.0])
    survived(planner, 20.0)
    planner.tick(NOW)
    # due = start + 1.1 x 20 + 2 - 0.1 = 23.9, long past: the oldest is probed now.
    assert planner.conns[0].state is ConnState.PROBING
    later = planner_with_pool([30.0])
    later.started_at = NOW - 10.0
    survived(later, 20.0)
    later.tick(NOW)
    assert later.next_scout == (0, pytest.approx(NOW - 10.0 + 23.9))


def test_an_overdue_scout_push_starts_refining_at_once() -> None:
    planner = planner_with_pool([10.25, 20.0, 10.0 + 13 / 16])
    survived(planner, 10.0)
    planner._probe(_Round(NOW), planner.conns[1], scout=True)
    assert probed(planner.tick(NOW + 0.05)) == []  # not yet suspect
    # Suspect after 0.1 s: refine between 10 and the scout's 20 s of age.
    actions = planner.tick(NOW + 0.1)
    assert probed(actions) == [0, 2] and planner.conns[1].scout is False


def test_planner_config_refuses_what_cannot_work() -> None:
    with pytest.raises(ValueError) as few:
        PlannerConfig(max_conns=1)
    assert str(few.value) == "the planner needs at least 2 test connections"
    with pytest.raises(ValueError) as idle:
        PlannerConfig(max_idle_s=0)
    assert str(idle.value) == "max_idle_s must be positive"
    assert PlannerConfig(max_conns=2).max_conns == 2
    assert PlannerConfig(max_idle_s=0.5).max_idle_s == 0.5


def test_a_pinned_run_through_a_two_minute_nat() -> None:
    # The whole planner on the simulator: the bracket's bounds, the time and
    # the work, to the millisecond. Any change to the plan shows here; if it
    # is meant, the new figures go in with the reason. The pool is the default
    # discovery's (29 of --parallel 32, 15% opening gaps): at 120 s it comes
    # at 1.13 T, past the goal (docs/discovery.md, "Why not 32").
    result = simulate(Planner(PlannerConfig(max_conns=tcp_planner_pool())), SimPath(120.0, rtt_s=0.02))
    b = result.bracket
    assert (round(b.lower or 0, 3), round(b.upper or 0, 3)) == (119.962, 121.155)
    assert round(result.wall_s, 3) == 135.959
    assert (result.probes, result.connections_opened, result.max_connections) == (31, 30, 30)


def test_events_for_unknown_connections_are_harmless_while_others_are_probed() -> None:
    planner = planner_with_pool([5.0, 6.0])
    planner._probe(_Round(NOW), planner.conns[0])
    planner.open_failed(42, NOW + 0.01)
    planner.ended(42, FailureMode.RESET, NOW + 0.02)
    planner.pushed(42, 1.0, NOW + 0.03)
    planner.opened(1, NOW + 0.04)  # already idle: not reset
    assert planner.conns[1].idle_since == NOW - 6.0 and planner.evidence.tests == []


START = 1000.0  # a clock that does not start at zero, as monotonic clocks do not


def test_test_timings_are_counted_from_the_start_of_the_run() -> None:
    planner = Planner(PlannerConfig(max_conns=2, grace_s=1.0))
    planner.start(START)
    planner.opened(0, START + 10.0)
    step = _Round(START + 20.0)
    planner._probe(step, planner.conns[0])
    # Woken when the push becomes suspect, and again when it is lost.
    assert step.wakeups == [START + 20.0 + planner.config.suspect_s, START + 21.0]
    planner.tick(START + 21.0)
    (test,) = planner.evidence.tests
    assert test.conn == 0
    assert (test.idle_since, test.asked_at, test.result_at) == (10.0, 20.0, 21.0)


def test_budget_and_pool_gaps_are_counted_from_the_start() -> None:
    planner = Planner(PlannerConfig(max_conns=3, budget_s=50.0, open_gap_abs_s=0.5, open_gap_frac=0.5))
    assert planner.start(START) == [Open(0)]
    assert planner.tick(START + 0.5) == [Open(1)]
    # The next gap is half the time since the start (0.5 s), not of the clock.
    assert planner.next_wakeup() == pytest.approx(START + 1.0)
    assert planner.tick(START + 1.0) == [Open(2)]
    assert planner.conns[2].idle_since == START + 1.0
    assert Finish("budget") not in planner.tick(START + 49.0)
    assert planner.tick(START + 50.0)[-1] == Finish("budget")


def test_a_failure_is_never_charged_less_than_the_servers_idle_or_zero() -> None:
    planner = Planner(PlannerConfig(max_conns=2, grace_s=1.0))
    planner.start(START)
    planner.opened(0, START + 10.0)
    planner._probe(_Round(START + 10.5), planner.conns[0])
    planner.tick(START + 11.5)
    assert planner.evidence.tests[0].idle_s == pytest.approx(0.5)


def test_with_nothing_survived_refining_counts_from_zero() -> None:
    # Failed at 1.25 s and nothing survived: probes start a quarter width
    # (0.125 s) above zero, 0.225 s apart; a 1.25 s bracket is not resolved.
    planner = planner_with_pool([0.0625, 0.25, 0.5, 0.6875, 1.0, 1.1875], resolution_s=0.5)
    failed(planner, 1.25)
    actions = planner.tick(NOW)
    assert Finish("resolved") not in actions
    assert probed(actions) == [1, 2, 4]


def test_an_unasked_push_without_a_server_idle_is_charged_the_clients_idle() -> None:
    planner = Planner(PlannerConfig(max_conns=2))
    planner.start(0.0)
    planner.opened(0, 10.0)
    planner.arrived(0, None, 10.3)
    assert planner.evidence.tests[0].idle_s == pytest.approx(0.3)


def test_a_long_grace_stretches_the_time_spent_on_contradictions() -> None:
    # extra = max(2 x grace, 0.1 x 20 + 2) = max(6, 4) = 6 s.
    planner = planner_with_pool([1.0], grace_s=3.0)
    failed(planner, 15.0)
    survived(planner, 20.0)
    failed(planner, 21.0)
    planner.tick(NOW)
    assert planner._inconsistent_until == pytest.approx(NOW + 6.0)
