"""The design connections' verdicts, the kind of box, and the advice they allow (core/designs.py)."""

from __future__ import annotations

import pytest

from probe.core.design_advice import design_settings
from probe.core.designs import (
    AGE_MARGIN_S,
    COST_ORDER,
    KIND_DETAIL,
    Design,
    DesignOutcome,
    DesignTrials,
    Kind,
    Reason,
    cheapest_kept,
    confirm_time_s,
    designs_for,
    middlebox,
    traffic_every,
    udp_designs,
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


# Every field of each verdict, as the JSON carries it -----------------------------


def test_each_verdict_is_whole_for_each_way_a_design_connection_ends() -> None:
    designs = (D.TCP_KEEPALIVE, D.SERVER_KEEPALIVE, D.CLIENT_DATA, D.SERVER_DATA, D.WS_PING, D.HEARTBEAT)
    trials = DesignTrials.of(designs)
    trials.open_failed(D.SERVER_KEEPALIVE, "refused")
    for design in (D.TCP_KEEPALIVE, D.CLIENT_DATA, D.SERVER_DATA, D.WS_PING, D.HEARTBEAT):
        trials.opened(design, 1.0)
    trials.ended(D.SERVER_DATA, FailureMode.RESET, 4.0)  # young: not the timeout
    trials.ended(D.WS_PING, FailureMode.CLOSED, 11.25)  # at the timeout, traffic or not
    trials.asked(D.TCP_KEEPALIVE, 12.5)
    trials.asked(D.CLIENT_DATA, 12.5)
    trials.arrived(D.CLIENT_DATA, 12.6)
    trials.asked(D.HEARTBEAT, 9.0)  # too young when pushed
    assert trials.open_count() == 3
    assert trials.outcomes(10.2, lower_s=10.0) == {
        D.TCP_KEEPALIVE: DesignOutcome(False, 1.0, 11.5, "the push after 11.5s did not arrive"),
        D.SERVER_KEEPALIVE: DesignOutcome(None, 1.0, None, "the connection did not open: refused", Reason.NOT_OPENED),
        D.CLIENT_DATA: DesignOutcome(True, 1.0, 11.5, "the push arrived after 11.5s with only this traffic"),
        D.SERVER_DATA: DesignOutcome(
            None, 1.0, 3.0, "the connection was reset after 3.0s, before the bound", Reason.ENDED_EARLY
        ),
        D.WS_PING: DesignOutcome(False, 1.0, 10.25, "the flow was closed after 10.2s despite the traffic"),
        D.HEARTBEAT: DesignOutcome(None, 1.0, 8.0, "pushed on before it was idle past the bound", Reason.TOO_YOUNG),
    }


def test_the_ages_keep_milliseconds() -> None:
    trials = trials_opened_at(1.0, D.CLIENT_DATA, D.HEARTBEAT)
    trials.asked(D.CLIENT_DATA, 12.34567)
    trials.ended(D.HEARTBEAT, FailureMode.CLOSED, 12.34567)
    out = trials.outcomes(10.0, lower_s=9.5)
    assert out[D.CLIENT_DATA].age_s == 11.346 and out[D.HEARTBEAT].age_s == 11.346


def test_not_pushed_in_time_and_without_a_room_say_so_in_full() -> None:
    trials = DesignTrials.of((D.CLIENT_DATA, D.HEARTBEAT))
    trials.opened(D.CLIENT_DATA, 0.0)
    trials.open_failed(D.HEARTBEAT, "")
    out = trials.outcomes(10.0)
    assert out[D.CLIENT_DATA] == DesignOutcome(None, 1.0, None, "not pushed on before the run ended", Reason.TOO_YOUNG)
    assert out[D.HEARTBEAT].detail == "the connection did not open: no room for it"
    # Interrupted is the default no more: only when the run says so.
    assert trials.outcomes(10.0, interrupted=True)[D.CLIENT_DATA].reason is Reason.INTERRUPTED


def test_an_old_server_names_each_design_it_does_not_know() -> None:
    trials = DesignTrials.of(designs_for(websocket=True))
    trials.server_knows(["tick"], "natprobe 0.1.0")
    assert trials.to_open() == [D.TCP_KEEPALIVE, D.CLIENT_DATA, D.WS_PING, D.HEARTBEAT]
    out = trials.outcomes(10.0)
    assert out[D.SERVER_KEEPALIVE] == DesignOutcome(
        None, 1.0, None, "the server (natprobe 0.1.0) is too old to know this design (keepalive_s)", Reason.OLD_SERVER
    )
    assert out[D.SERVER_DATA].detail.endswith("(tick_every_s)")
    # A welcome without the field (or with junk in it) knows none of them; an unnamed server says so.
    for junk in (None, "tick", 3):
        trials = DesignTrials.of((D.CLIENT_DATA, D.HEARTBEAT))
        trials.server_knows(junk, "")
        assert trials.to_open() == [D.HEARTBEAT]
        assert trials.outcomes(10.0)[D.CLIENT_DATA].detail == (
            "the server (unnamed) is too old to know this design (tick)"
        )
    everything = DesignTrials.of(designs_for(websocket=True))
    everything.server_knows(("tick", "keepalive_s", "tick_every_s"), "natprobe")
    assert everything.to_open() == list(designs_for(websocket=True))


def test_confirm_takes_the_bracket_then_one_and_a_half_timeouts() -> None:
    assert confirm_time_s(100.0) == pytest.approx(110.0 + 2.0 + 150.0)
    assert confirm_time_s(30.0) == pytest.approx(80.0)


def test_confirm_trials_run_at_the_recommended_interval_and_are_not_retimed() -> None:
    trials = DesignTrials.of((D.CLIENT_DATA, D.TCP_KEEPALIVE), every_s=240.0)
    assert trials.fixed is True
    assert trials.every_s(D.CLIENT_DATA) == 240.0 and trials.every_s(D.TCP_KEEPALIVE) == 240.0
    trials.retime(2.0)
    assert trials.every_s(D.CLIENT_DATA) == 240.0
    assert DesignTrials.of((D.CLIENT_DATA,)).fixed is False


def test_the_traffic_interval_keeps_milliseconds() -> None:
    assert traffic_every(D.CLIENT_DATA, 3.0) == 0.75
    assert traffic_every(D.CLIENT_DATA, 1.0001) == 0.25


def test_the_kinds_detail_is_the_one_for_its_kind() -> None:
    box = middlebox(verdicts(tcp_keepalive=True, client_data=True, server_data=True))
    assert box.detail == KIND_DETAIL[Kind.IP_STATEFUL]
    box = middlebox(verdicts(tcp_keepalive=False, client_data=True, server_data=False))
    assert box.detail == "data kept the flow in one direction only: the box counts only data from the client"
    assert middlebox({}).detail == KIND_DETAIL[Kind.UNKNOWN]


def test_the_udp_designs_cost_order_and_traffic() -> None:
    assert udp_designs() == (D.CLIENT_ONLY, D.REQUEST_RESPONSE)
    assert cheapest_kept(verdicts(request_response=True, client_only=True)) is D.CLIENT_ONLY
    assert cheapest_kept(verdicts(request_response=True, client_only=False)) is D.REQUEST_RESPONSE


EXPECTED_SETTINGS = {
    D.TCP_KEEPALIVE: [
        ("Linux, system-wide", "sysctl -w net.ipv4.tcp_keepalive_time=240 net.ipv4.tcp_keepalive_intvl=60"),
        ("Python, per socket", "SO_KEEPALIVE=1, TCP_KEEPIDLE=240, TCP_KEEPINTVL=60, TCP_KEEPCNT=3"),
    ],
    D.SERVER_KEEPALIVE: [
        ("server, per accepted socket", "SO_KEEPALIVE=1, TCP_KEEPIDLE=240, TCP_KEEPINTVL=60, TCP_KEEPCNT=3"),
        ("nginx", "listen ... so_keepalive=240s:60:3;"),
    ],
    D.CLIENT_DATA: [
        ("Python asyncio", "every 240s, writer.write() a message the server ignores (no answer needed)"),
        ("websockets", "every 240s, await ws.send() a message the server ignores"),
        ("Node.js ws", "setInterval(() => ws.send('{}'), 240000)"),
    ],
    D.SERVER_DATA: [
        ("server, any stack", "every 240s, send each idle client a message it ignores"),
        ("websockets (server)", "every 240s, await ws.send() to each connection"),
        ("Node.js ws (server)", "setInterval(() => wss.clients.forEach(c => c.send('{}')), 240000)"),
    ],
    D.WS_PING: [
        ("websockets", "connect(..., ping_interval=240, ping_timeout=7.5)"),
        ("Node.js ws", "setInterval(() => ws.ping(), 240000)"),
        ("browsers", "cannot send pings: use a message heartbeat instead"),
    ],
    D.HEARTBEAT: [
        ("any stack", "every 240s, send a request the server answers; no answer in 7.5s: reconnect"),
        ("Socket.IO", "pingInterval: 240000, pingTimeout: 7500 (answered heartbeats)"),
    ],
    D.CLIENT_ONLY: [
        ("WireGuard", "PersistentKeepalive = 240"),
        ("any UDP protocol", "every 240s, send one datagram the peer need not answer"),
    ],
    D.REQUEST_RESPONSE: [
        ("STUN", "a Binding request every 240s (RFC 5626 keepalive)"),
        ("QUIC", "keep_alive_interval 240s (PING, answered by an ACK)"),
    ],
}


@pytest.mark.parametrize("design", list(Design))
def test_the_settings_a_reader_copies(design: Design) -> None:
    # What the summary prints for each design at a 240 s interval and a 7.5 s answer time.
    assert design_settings(design, 240.0, 7.5) == EXPECTED_SETTINGS[design]
