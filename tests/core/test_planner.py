"""The planner against a virtual-time NAT. Times are exact virtual seconds.

Goal (docs/discovery.md): through a NAT that silently forgets flows idle for
T, the bracket contains T, is at most max(2% T, 0.5 s) wide, and arrives by
1.10 T + 2 s plus the grace period. The default 32 connections meet the time
goal below T of about 100 s; --parallel 64 meets it at every scale.
"""

from __future__ import annotations

import pytest

from probe.core.evidence import FailureMode
from probe.core.planner import Open, Planner, PlannerConfig, Probe
from probe.core.pools import tcp_planner_pool
from probe.lab.simnat import SimPath, SimResult, simulate

GRACE = PlannerConfig().grace_s


def _goal_width(t: float) -> float:
    return max(0.02 * t, 0.5)


#: The planner's share of the default --parallel 32, and of --parallel 64.
DEFAULT_POOL = tcp_planner_pool()
WIDE_POOL = tcp_planner_pool(64)


def _assert_goal(result: SimResult, timeout: float, wall_factor: float = 1.10) -> None:
    b = result.bracket
    assert b.lower is not None and b.upper is not None
    assert b.lower <= timeout <= b.upper
    assert b.upper - b.lower <= _goal_width(timeout) + 1e-9
    assert result.wall_s <= wall_factor * timeout + 2.0 + GRACE
    assert b.consistent and b.failure_mode is FailureMode.SILENT_DROP
    assert result.reason == "resolved"


@pytest.mark.parametrize("timeout", [1.0, 2.0, 5.0, 12.0, 30.0, 60.0])
def test_the_default_pool_meets_the_goal_below_about_100_s(timeout: float) -> None:
    result = simulate(Planner(PlannerConfig(max_conns=DEFAULT_POOL)), SimPath(timeout, rtt_s=0.02))
    _assert_goal(result, timeout)
    # The simulation counts the control connection too.
    assert result.max_connections <= DEFAULT_POOL + 1 == 30


@pytest.mark.parametrize("timeout", [120.0, 350.0, 1200.0, 7000.0])
def test_the_default_pool_is_as_narrow_and_at_most_a_fifth_late_above(timeout: float) -> None:
    # 29 connections cannot scout every 10% step for hours (docs/discovery.md,
    # "Why not 32"): the bracket is as narrow, the answer up to ~1.21 T.
    result = simulate(Planner(PlannerConfig(max_conns=DEFAULT_POOL)), SimPath(timeout, rtt_s=0.02))
    _assert_goal(result, timeout, wall_factor=1.25)


@pytest.mark.parametrize("timeout", [1.0, 5.0, 30.0, 120.0, 350.0, 1200.0, 7000.0])
def test_parallel_64_meets_the_goal_at_every_scale(timeout: float) -> None:
    result = simulate(Planner(PlannerConfig(max_conns=WIDE_POOL)), SimPath(timeout, rtt_s=0.02))
    _assert_goal(result, timeout)
    assert result.max_connections <= WIDE_POOL + 1 == 62


@pytest.mark.parametrize(("mode", "expected"), [("reset", FailureMode.RESET), ("close", FailureMode.CLOSED)])
def test_active_middleboxes_are_classified(mode: str, expected: FailureMode) -> None:
    result = simulate(Planner(PlannerConfig()), SimPath(60.0, mode=mode))
    b = result.bracket
    assert b.failure_mode is expected
    assert b.lower is not None and b.upper is not None and b.lower <= 60.0 <= b.upper
    # A reset or close is seen when it happens: no waiting for a deadline.
    assert result.wall_s <= 1.10 * 60 + 2.0


def test_no_timeout_below_max_idle_leaves_upper_open() -> None:
    cfg = PlannerConfig(max_idle_s=300.0)
    result = simulate(Planner(cfg), SimPath(1000.0))
    b = result.bracket
    assert result.reason == "max_idle"
    assert b.upper is None and b.lower is not None and b.lower >= 300.0 - 1e-6
    # It stops once max_idle has been tested, not at the real timeout.
    assert result.wall_s <= 300.0 * 1.10 + 2.0 + GRACE


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_sweeping_nat_keeps_the_bracket_honest(seed: int) -> None:
    # Flows expire at the first sweep after T: anywhere in [T, T + 10 s].
    timeout, sweep = 120.0, 10.0
    result = simulate(Planner(PlannerConfig()), SimPath(timeout, sweep_s=sweep, seed=seed))
    b = result.bracket
    assert b.lower is not None and b.upper is not None
    # Honest: nothing idle less than T failed, nothing beyond T + sweep survived,
    # and every contradiction lies inside the reported bracket.
    assert b.shortest_failed is not None and b.shortest_failed >= timeout
    assert b.longest_survived is not None and b.longest_survived <= timeout + sweep
    assert b.lower <= b.shortest_failed and b.longest_survived <= b.upper
    assert b.consistent == (b.longest_survived < b.shortest_failed)


def test_a_push_lost_once_within_grace_is_not_a_failure() -> None:
    # Every push is lost once and retransmitted 0.2 s later; grace is 1 s.
    result = simulate(Planner(PlannerConfig()), SimPath(45.0, loss_once=1.0, rtt_s=0.02))
    b = result.bracket
    assert b.lower is not None and b.upper is not None and b.lower <= 45.0 <= b.upper
    assert b.consistent


def test_a_push_later_than_grace_is_converted_not_dropped() -> None:
    # Timeline (virtual seconds): connection 0 opens at 0 and stays idle; the
    # scout probes it at 1.9 (wall_slack 2 - suspect 0.1); nothing arrives by
    # the deadline 2.9, so it fails; the push then arrives at 3.2.
    planner = Planner(PlannerConfig(max_conns=2))
    actions = planner.start(0.0)
    first = next(a.conn for a in actions if isinstance(a, Open))
    planner.opened(first, 0.0)
    actions = planner.tick(1.9)
    assert Probe(first) in actions
    planner.tick(2.9)
    assert planner.bracket().upper == pytest.approx(1.9)
    planner.arrived(first, 1.9, 3.2)
    test = planner.evidence.tests[0]
    assert test.late and test.outcome.value == "survived"
    b = planner.bracket()
    assert b.upper is None and b.lower == pytest.approx(1.9)


def test_budget_stops_with_the_best_bracket_so_far() -> None:
    result = simulate(Planner(PlannerConfig(budget_s=100.0)), SimPath(3000.0))
    assert result.reason == "budget"
    assert result.wall_s == pytest.approx(100.0)
    b = result.bracket
    assert b.upper is None and b.lower is not None and 80.0 < b.lower < 100.0


def test_expect_min_stops_as_soon_as_the_path_is_proven_shorter() -> None:
    result = simulate(Planner(PlannerConfig(expect_min_s=300.0)), SimPath(60.0))
    assert result.reason == "expect_min"
    b = result.bracket
    assert b.upper is not None and b.upper < 300.0
    # Proven at the first failure, before refining finishes.
    assert result.wall_s <= 1.10 * 60 + 2.0 + GRACE


def test_user_resolution_is_honoured_within_the_usual_time() -> None:
    result = simulate(Planner(PlannerConfig(resolution_s=5.0, max_conns=WIDE_POOL)), SimPath(600.0))
    b = result.bracket
    assert b.lower is not None and b.upper is not None
    assert b.lower <= 600.0 <= b.upper and b.upper - b.lower <= 5.0
    assert result.wall_s <= 1.10 * 600.0 + 2.0 + GRACE


@pytest.mark.parametrize(("conns", "timeout"), [(7, 200.0), (7, 30.0), (3, 60.0)])
def test_few_connections_still_find_the_timeout_at_the_usual_width_in_a_few_t(conns: int, timeout: float) -> None:
    # Too few connections to keep a spread of ages: the scout steps
    # geometrically instead, so it takes a few T (2 to 5.3 T measured), but
    # the bracket is as narrow as ever.
    result = simulate(Planner(PlannerConfig(max_conns=conns)), SimPath(timeout))
    b = result.bracket
    assert b.lower is not None and b.upper is not None and b.lower <= timeout <= b.upper
    assert b.upper - b.lower <= _goal_width(timeout) + 1e-9
    assert result.wall_s <= 6.0 * timeout
    assert result.max_connections <= conns + 1
