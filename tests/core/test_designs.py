"""The design connections' verdicts, the kind of box, and the advice they allow (core/designs.py)."""

from __future__ import annotations

import pytest

from probe.core.design_advice import design_settings
from probe.core.designs import (
    AGE_MARGIN_S,
    COST_ORDER,
    Design,
    DesignOutcome,
    DesignTrials,
    Kind,
    Reason,
    cheapest_kept,
    designs_for,
    middlebox,
    traffic_every,
)
from probe.core.evidence import FailureMode
from probe.core.model import to_json
from probe.core.plan import PlanInputs, make_plan
from probe.core.recommend import recommendations
from tests.factories import bracket

D = Design


def verdicts(**kept: bool | None) -> dict[Design, DesignOutcome]:
    return {Design(name): DesignOutcome(value, 1.0, 12.0, "") for name, value in kept.items()}


@pytest.mark.parametrize(
    ("kept", "kind"),
    [
        ({"tcp_keepalive": True, "client_data": True, "server_data": True}, Kind.IP_STATEFUL),
        ({"tcp_keepalive": False, "client_data": True, "server_data": True}, Kind.TCP_TERMINATING),
        ({"tcp_keepalive": False, "client_data": False, "server_data": True}, Kind.ONE_DIRECTION),
        ({"tcp_keepalive": True, "client_data": True, "server_data": False}, Kind.ONE_DIRECTION),
        ({"tcp_keepalive": False, "client_data": False, "server_data": False}, Kind.UNKNOWN),
        ({"tcp_keepalive": None, "client_data": True, "server_data": True}, Kind.UNKNOWN),
        ({"tcp_keepalive": True, "client_data": None, "server_data": True}, Kind.UNKNOWN),
        ({}, Kind.UNKNOWN),
    ],
)
def test_the_kind_of_box_follows_from_keepalive_and_the_two_data_directions(
    kept: dict[str, bool | None], kind: Kind
) -> None:
    assert middlebox(verdicts(**kept)).kind is kind


def test_one_direction_names_the_direction_that_kept_it() -> None:
    box = middlebox(verdicts(tcp_keepalive=False, client_data=False, server_data=True))
    assert "data from the server" in box.detail
    box = middlebox(verdicts(tcp_keepalive=False, client_data=True, server_data=False))
    assert "data from the client" in box.detail


def test_the_cheapest_kept_design_wins_and_none_when_nothing_kept() -> None:
    assert cheapest_kept(verdicts(heartbeat=True, client_data=True, tcp_keepalive=False)) is D.CLIENT_DATA
    assert cheapest_kept(verdicts(heartbeat=True, tcp_keepalive=True)) is D.TCP_KEEPALIVE
    assert cheapest_kept(verdicts(heartbeat=None, tcp_keepalive=False)) is None
    assert COST_ORDER[0] is D.TCP_KEEPALIVE and COST_ORDER[-1] is D.HEARTBEAT


def test_ws_ping_is_tried_only_on_websocket_paths() -> None:
    assert D.WS_PING not in designs_for(websocket=False) and len(designs_for(False)) == 5
    assert designs_for(websocket=True) == COST_ORDER


def test_traffic_comes_every_second_and_four_times_within_a_short_bracket() -> None:
    assert traffic_every(D.CLIENT_DATA, None) == 1.0
    assert traffic_every(D.CLIENT_DATA, 10.0) == 1.0
    assert traffic_every(D.HEARTBEAT, 2.0) == 0.5
    assert traffic_every(D.WS_PING, 0.1) == 0.05  # never faster than this
    # Kernel keepalive takes whole seconds.
    assert traffic_every(D.TCP_KEEPALIVE, 2.0) == 1.0


def trials_opened_at(start: float, *designs: Design) -> DesignTrials:
    trials = DesignTrials.of(designs)
    for design in designs:
        trials.opened(design, start)
    return trials


def test_a_push_that_arrives_past_the_bound_is_kept_and_one_that_does_not_is_not() -> None:
    trials = trials_opened_at(1.0, D.TCP_KEEPALIVE, D.CLIENT_DATA)
    assert trials.wait_before_push(10.0, 5.0) == pytest.approx(6.0 + AGE_MARGIN_S)
    assert trials.wait_before_push(10.0, 12.0) == 0.0
    assert trials.to_push() == [D.TCP_KEEPALIVE, D.CLIENT_DATA]
    for design in trials.to_push():
        trials.asked(design, 12.0)
    trials.arrived(D.CLIENT_DATA, 12.01)
    assert trials.to_hear([D.TCP_KEEPALIVE, D.CLIENT_DATA]) == [D.TCP_KEEPALIVE]
    out = trials.outcomes(10.0)
    assert out[D.CLIENT_DATA].kept is True and out[D.CLIENT_DATA].age_s == 11.0
    assert out[D.TCP_KEEPALIVE].kept is False and "did not arrive" in out[D.TCP_KEEPALIVE].detail
    assert out[D.TCP_KEEPALIVE].reason is None


def test_a_flow_ended_at_the_timeout_is_not_kept_and_one_ended_younger_is_not_told() -> None:
    trials = trials_opened_at(0.0, D.TCP_KEEPALIVE, D.SERVER_KEEPALIVE, D.CLIENT_DATA)
    # A proxy closes it at its timeout, inside the bracket (9.9 to 10.2).
    trials.ended(D.TCP_KEEPALIVE, FailureMode.CLOSED, 10.0)
    trials.ended(D.SERVER_KEEPALIVE, FailureMode.RESET, 3.0)
    trials.ended(D.CLIENT_DATA, FailureMode.CLOSED, 9.9 - AGE_MARGIN_S + 0.01)
    out = trials.outcomes(10.2, lower_s=9.9)
    assert out[D.CLIENT_DATA].kept is False
    assert out[D.TCP_KEEPALIVE].kept is False and "closed after 10.0s" in out[D.TCP_KEEPALIVE].detail
    assert out[D.SERVER_KEEPALIVE].kept is None and out[D.SERVER_KEEPALIVE].reason is Reason.ENDED_EARLY
    # An ended connection is not pushed on, nor waited for.
    assert trials.to_push() == [] and trials.wait_before_push(10.2, 4.0) == 0.0
    # Without a measured timeout an ended connection tells nothing either.
    assert trials.outcomes(None)[D.TCP_KEEPALIVE].reason is Reason.ENDED_EARLY


def test_a_late_arrival_after_the_end_or_without_a_push_changes_nothing() -> None:
    trials = trials_opened_at(0.0, D.HEARTBEAT)
    trials.arrived(D.HEARTBEAT, 5.0)  # a backstop push nobody asked for
    trials.asked(D.HEARTBEAT, 12.0)
    trials.ended(D.HEARTBEAT, FailureMode.CLOSED, 12.5)
    trials.arrived(D.HEARTBEAT, 12.6)
    assert trials.outcomes(10.0)[D.HEARTBEAT].kept is False


@pytest.mark.parametrize(
    ("upper", "asked", "interrupted", "reason"),
    [
        (None, None, False, Reason.NO_TIMEOUT),
        (10.0, None, False, Reason.TOO_YOUNG),
        (10.0, None, True, Reason.INTERRUPTED),
        (10.0, 9.0, False, Reason.TOO_YOUNG),
    ],
)
def test_what_cannot_be_told_says_why(
    upper: float | None, asked: float | None, interrupted: bool, reason: Reason
) -> None:
    trials = trials_opened_at(0.0, D.CLIENT_DATA)
    if asked is not None:
        trials.asked(D.CLIENT_DATA, asked)
        trials.arrived(D.CLIENT_DATA, asked + 0.01)
    outcome = trials.outcomes(upper, interrupted)[D.CLIENT_DATA]
    assert outcome.kept is None and outcome.reason is reason


def test_a_design_that_never_opened_says_why() -> None:
    trials = DesignTrials.of((D.SERVER_KEEPALIVE, D.HEARTBEAT))
    trials.open_failed(D.SERVER_KEEPALIVE, "no room")
    assert trials.to_open() == [D.HEARTBEAT]
    outcome = trials.outcomes(10.0)[D.SERVER_KEEPALIVE]
    assert outcome.kept is None and outcome.reason is Reason.NOT_OPENED and "no room" in outcome.detail
    assert trials.open_count() == 0


def test_retime_speeds_the_data_designs_up_but_never_slows_them() -> None:
    trials = DesignTrials.of((D.TCP_KEEPALIVE, D.CLIENT_DATA))
    trials.retime(2.0)
    assert trials.every_s(D.CLIENT_DATA) == 0.5 and trials.every_s(D.TCP_KEEPALIVE) == 1.0
    trials.retime(100.0)
    assert trials.every_s(D.CLIENT_DATA) == 0.5


def test_the_outcome_json_names_each_field() -> None:
    trials = trials_opened_at(0.0, D.CLIENT_DATA)
    assert to_json(trials.outcomes(None)) == {
        "client_data": {
            "kept": None,
            "traffic_every_s": 1.0,
            "age_s": None,
            "detail": "no timeout was measured, so nothing had to keep the flow",
            "reason": "no_timeout",
        }
    }


BRACKET = bracket(300.0, 310.0)


def test_keepalive_not_kept_takes_the_kernel_settings_out_of_the_advice() -> None:
    designs = verdicts(tcp_keepalive=False, client_data=True, server_data=True, heartbeat=True, ws_ping=False)
    rec = recommendations(BRACKET, "closed", designs)
    assert rec is not None
    assert rec.linux_sysctl is None and rec.socket_options is None and rec.websocket_ping_interval_s is None
    assert rec.design is D.CLIENT_DATA and rec.interval_s == 240.0
    plan = make_plan(PlanInputs(BRACKET, designs=designs))
    assert plan.keepalive.kept is False and plan.heartbeat.kept is True


def test_keepalive_kept_keeps_the_kernel_settings_and_names_it() -> None:
    rec = recommendations(BRACKET, "silent_drop", verdicts(tcp_keepalive=True, client_data=True))
    assert rec is not None and rec.linux_sysctl is not None and rec.design is D.TCP_KEEPALIVE
    # Not tried (a survey's placeholder, a UDP path): the advice stays as it was.
    untried = recommendations(BRACKET, "silent_drop")
    assert untried is not None and untried.linux_sysctl is not None and untried.design is None
    assert make_plan(PlanInputs(BRACKET)).keepalive.kept is None


@pytest.mark.parametrize("design", list(Design))
def test_every_design_has_settings_at_the_interval(design: Design) -> None:
    settings = design_settings(design, 240.0, 5.0)
    assert len(settings) >= 2
    text = " ".join(s for _, s in settings)
    assert "240" in text
