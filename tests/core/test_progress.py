"""The live view's data, built from a planner on a virtual clock.

Timeline: the run starts at 100 s; connection 0 says hello at 100.5 and is
idle from then; the first scout is due at 100 + 2 (slack) - 0.1 (suspect)
= 101.9, testing an idle of 1.4 s.
"""

from __future__ import annotations

import pytest

from probe.core.evidence import FailureMode
from probe.core.planner import Planner, PlannerConfig
from probe.core.progress import ConnRow, Mark, StateProgress, state_progress


def planner(**config: float) -> Planner:
    p = Planner(PlannerConfig(max_conns=3, grace_s=1.0, **config))
    p.start(100.0)
    return p


def test_before_any_hello_one_connection_opens_and_the_answer_is_at_least_slack_plus_grace_away() -> None:
    assert state_progress(planner(), 100.0, 100.0) == StateProgress(
        state=None, lower_s=None, upper_s=None, width_s=None, expected_in_s=3.0, refining=False,
        connections=(ConnRow(0, "opening", None, None, False),), recent=(), finished=False,
    )  # fmt: skip


def test_an_idle_connection_shows_its_age_and_the_idle_its_scout_will_test() -> None:
    p = planner()
    p.opened(0, 100.5)
    view = state_progress(p, 100.0, 101.0, state="replied")
    assert view.state == "replied" and view.expected_in_s == 2.0
    first, second = view.connections
    assert (first.conn, first.state, first.age_s, first.next_scout) == (0, "idle", 0.5, True)
    assert first.target_s == pytest.approx(1.4)
    assert second == ConnRow(1, "opening", None, None, False)


def test_a_probed_connection_shows_the_idle_it_is_tested_at_and_a_result_becomes_a_mark() -> None:
    p = planner()
    p.opened(0, 100.5)
    p.tick(101.9)
    probing = state_progress(p, 100.0, 102.0).connections[0]
    assert (probing.state, probing.age_s, probing.next_scout) == ("probing", 1.5, False)
    assert probing.target_s == pytest.approx(1.4)
    p.arrived(0, 1.375, 102.0)
    view = state_progress(p, 100.0, 102.0)
    assert view.recent == (Mark(1.375, True),) and view.lower_s == 1.375
    # The goal moved: 100 + 1.1 * 1.375 + 2 + grace 1 - now 102 = 2.5125.
    assert view.expected_in_s == pytest.approx(2.5125)
    # Answered, it is idle again from now: the youngest idle connection.
    idle = [(r.conn, r.age_s) for r in view.connections if r.state == "idle"]
    assert idle[-1] == (0, 0.0)


def test_after_a_failure_it_is_refining_with_the_grace_left_and_then_finished() -> None:
    p = planner()
    p.opened(0, 100.5)
    p.opened(1, 100.5)
    p.tick(101.9)
    p.arrived(0, 1.375, 102.0)
    p.ended(1, FailureMode.RESET, 103.0)
    view = state_progress(p, 100.0, 103.0)
    assert view.refining is True and view.expected_in_s == 1.0
    assert view.upper_s is not None and view.width_s == pytest.approx(view.upper_s - 1.375)
    assert view.recent[-1] == Mark(view.upper_s, False) and view.finished is False
    assert len(state_progress(p, 100.0, 103.0, recent=1).recent) == 1
    assert state_progress(p, 100.0, 103.0, recent=0).recent == ()


def test_a_finished_planner_says_so() -> None:
    p = planner(budget_s=5.0)
    assert state_progress(p, 100.0, 101.0).finished is False
    p.tick(105.0)
    assert p.finished == "budget" and state_progress(p, 100.0, 105.0).finished is True


def test_a_stream_state_counts_its_goal_from_the_end_of_its_setup() -> None:
    # The stream state's idle begins 2.5 s in: its answer is that much later.
    plain = state_progress(planner(), 100.0, 100.0)
    stream = state_progress(planner(open_delay_s=2.5), 100.0, 100.0, state="stream")
    assert stream.expected_in_s - plain.expected_in_s == 2.5


def test_connections_still_opening_come_after_the_idle_ones() -> None:
    # Connection 1 has been opening since 100.5; connection 0 is idle only
    # since its push was answered at 102: idle ones still come first.
    p = planner()
    p.opened(0, 100.5)
    p.tick(101.9)
    p.arrived(0, 1.375, 102.0)
    rows = [(r.conn, r.state) for r in state_progress(p, 100.0, 102.0).connections]
    assert rows[0] == (0, "idle") and rows[1:] and all(state == "opening" for _, state in rows[1:])
