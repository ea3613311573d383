"""The server's sessions and registry, sans-I/O, stepped in virtual time:
welcome and limits, the hello deadline and parking, push_after and push_now,
the report of an unacknowledged push, release and the end of a run."""

from __future__ import annotations

import heapq
import itertools
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from probe.core.server_registry import RateLimitedLog, Registry, ServerConfig
from probe.core.server_session import Session, Unacked
from probe.core.udp_table import UdpLimits


class Timer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualServer(Registry):
    """A registry on a virtual clock: timers fire when the test advances time."""

    def __init__(self, **config: Any) -> None:
        self.now = 100.0
        super().__init__(ServerConfig(**config), lambda: self.now, "natprobe test")
        self._timers: list[tuple[float, int, Timer, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.udp_sent: list[Any] = []

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> Timer:
        timer = Timer()
        heapq.heappush(self._timers, (self.now + delay, next(self._seq), timer, lambda: callback(*args)))
        return timer

    def send_udp(self, sends: Sequence[Any]) -> None:
        self.udp_sent.extend(sends)

    def advance(self, seconds: float) -> None:
        until = self.now + seconds
        for _ in range(10_000):
            if not self._timers or self._timers[0][0] > until:
                break
            at, _, timer, run = heapq.heappop(self._timers)
            self.now = max(self.now, at)
            if not timer.cancelled:
                run()
        self.now = until

    def pending(self) -> int:
        return sum(not t.cancelled for _, _, t, _ in self._timers)


class FakeLink:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed: str | None = None
        self.tcp_unacked: Unacked | None = None
        #: What set_keepalive was asked for; None: never. ``can_keepalive``: whether it takes.
        self.keepalive: int | None = None
        self.can_keepalive = True

    def set_keepalive(self, seconds: int) -> bool:
        self.keepalive = seconds
        return self.can_keepalive

    def send_line(self, data: bytes) -> None:
        assert data.endswith(b"\n")
        self.sent.append(json.loads(data))

    def close_link(self, code: str, message: str) -> None:
        self.closed = code

    def unacked(self) -> Unacked | None:
        return self.tcp_unacked

    def last(self, op: str) -> dict[str, Any]:
        return next(m for m in reversed(self.sent) if m["op"] == op)


def connect(server: VirtualServer, ip: str = "198.18.0.5", port: int = 40000) -> tuple[Session, FakeLink]:
    link = FakeLink()
    session = Session(server, (ip, port), link)
    refusal = server.admit(session)
    if refusal is not None:
        session.fail("busy", refusal)
    return session, link


def say(who: Session, /, **msg: Any) -> None:
    who.on_message(json.dumps(msg).encode())


def greeted(server: VirtualServer, run: str | None = None, ip: str = "198.18.0.5") -> tuple[Session, FakeLink]:
    session, link = connect(server, ip)
    say(session, op="hello", v=1, **({"run": run} if run else {}))
    assert link.sent[-1]["op"] == "welcome"
    return session, link


def closed(session: Session) -> None:
    """What the transport adapter does when its connection has ended."""
    session.on_closed()


# Welcome and limits ----------------------------------------------------------------


def test_welcome_tells_the_client_what_it_needs() -> None:
    server = VirtualServer(max_idle_s=600.0, max_per_ip=10, max_sessions=50, ack_check_s=0.7)
    server.udp_addresses.append(("198.18.0.1", 4041))
    session, link = greeted(server)
    welcome = link.sent[-1]
    assert welcome["observed"] == "198.18.0.5:40000"
    assert welcome["server"] == "natprobe test" and welcome["v"] == 1
    assert welcome["session"] == session.id and server.sessions[session.id] is session
    assert welcome["max_idle_s"] == 600.0 and welcome["push_report_s"] == 0.7
    assert welcome["instance"] == server.instance and len(server.instance) == 16
    assert welcome["udp"] == [4041]
    assert welcome["limits"] == {"max_sessions": 50, "sessions_free": 49, "max_per_ip": 10, "per_ip_free": 9}


def test_the_limits_refuse_a_connection_over_them() -> None:
    server = VirtualServer(max_per_ip=2, max_sessions=3)
    connect(server)
    connect(server)
    third, link = connect(server)
    assert link.sent[-1] == {"op": "error", "code": "busy", "message": "too many sessions from this address"}
    assert link.closed == "busy" and third.closed
    connect(server, ip="198.18.0.6")
    _, other = connect(server, ip="198.18.0.7")
    assert other.sent[-1]["message"] == "server is at its session limit"
    assert server.per_ip == {"198.18.0.5": 2, "198.18.0.6": 1}


def test_closing_gives_the_address_its_room_back() -> None:
    server = VirtualServer(max_per_ip=2)
    first, _ = greeted(server)
    greeted(server)
    closed(first)
    assert server.per_ip == {"198.18.0.5": 1} and first.id not in server.sessions
    assert server.limits_for("198.18.0.5")["per_ip_free"] == 1


def test_a_wrong_token_is_refused() -> None:
    server = VirtualServer(token="s3cret")
    session, link = connect(server)
    say(session, op="hello", v=1, token="guess")
    assert link.sent[-1]["code"] == "unauthorized" and session.closed
    ok, link = connect(server)
    say(ok, op="hello", v=1, token="s3cret")
    assert link.sent[-1]["op"] == "welcome"


@pytest.mark.parametrize(
    ("messages", "code"),
    [
        ([{"op": "hello", "v": 1}, {"op": "hello", "v": 1}], "bad_state"),
        ([{"op": "push_after", "id": "a", "idle_s": 1}], "bad_state"),
        ([{"op": "hello", "v": 1, "run": "gone"}], "bad_run"),
        ([{"op": "hello", "v": 2}], "bad_version"),
        ([{"op": "hello", "v": 1}, {"op": "push_after", "id": "a", "idle_s": 99999}], "bad_idle"),
    ],
)
def test_protocol_errors_close_the_session(messages: list[dict[str, Any]], code: str) -> None:
    server = VirtualServer(max_idle_s=600.0)
    session, link = connect(server)
    for msg in messages:
        say(session, **msg)
    assert link.sent[-1]["op"] == "error" and link.sent[-1]["code"] == code
    assert link.closed == code and session.closed


def test_too_many_rounds_on_one_connection() -> None:
    server = VirtualServer(max_rounds=3)
    session, link = greeted(server)
    for n in range(3):
        say(session, op="push_after", id=f"b{n}", idle_s=60)
    assert not session.closed
    say(session, op="push_after", id="b3", idle_s=60)
    assert link.sent[-1]["code"] == "too_many_rounds"


# The hello deadline ----------------------------------------------------------


def test_a_silent_connection_is_parked_until_max_idle() -> None:
    server = VirtualServer(max_idle_s=300.0)
    session, link = connect(server)
    session.hello_overdue()
    assert session.parked and server.parked == 1 and not session.closed
    server.advance(299.0)
    assert not session.closed
    server.advance(2.0)
    assert link.sent[-1]["code"] == "max_idle" and session.closed


def test_heartbeats_need_no_hello_and_keep_a_hold_parked() -> None:
    server = VirtualServer()
    session, link = connect(server)
    say(session, op="beat", id="h1")
    assert link.sent[-1] == {"op": "beat_ack", "id": "h1"}
    session.hello_overdue()
    assert session.parked


def test_past_the_parking_quota_a_silent_connection_is_closed() -> None:
    server = VirtualServer(max_parked_per_ip=1)
    first, _ = connect(server)
    first.hello_overdue()
    second, link = connect(server)
    second.hello_overdue()
    assert first.parked and not second.parked
    assert link.sent[-1] == {"op": "error", "code": "timeout", "message": "no hello in time"}


def test_a_connection_with_half_a_line_waiting_is_not_parked() -> None:
    server = VirtualServer()
    session, link = connect(server)
    session.hello_overdue(pending=True)
    assert not session.parked and link.closed == "timeout" and server.parked == 0


def test_a_parked_hold_may_still_say_hello() -> None:
    server = VirtualServer(max_idle_s=300.0)
    session, _ = connect(server)
    session.hello_overdue()
    say(session, op="hello", v=1)
    assert not session.parked and server.parked == 0 and session.greeted
    server.advance(400.0)
    assert not session.closed  # its max-idle timer went with the parking


# Pushes ----------------------------------------------------------------------------


def test_push_after_pushes_after_that_much_idle() -> None:
    server = VirtualServer()
    session, link = greeted(server)
    say(session, op="push_after", id="b0", idle_s=30)
    server.advance(29.9)
    assert link.sent[-1]["op"] == "welcome"
    server.advance(0.2)
    push = link.sent[-1]
    assert push["op"] == "push" and push["id"] == "b0" and push["idle_s"] == pytest.approx(30.0, abs=0.001)


def test_a_new_push_after_replaces_the_old_one() -> None:
    server = VirtualServer()
    session, link = greeted(server)
    say(session, op="push_after", id="b0", idle_s=10)
    say(session, op="push_after", id="b1", idle_s=20)
    server.advance(25.0)
    assert [m["id"] for m in link.sent if m["op"] == "push"] == ["b1"]


def test_push_now_pushes_on_a_member_and_tells_the_control() -> None:
    server = VirtualServer()
    control, control_link = greeted(server)
    member, member_link = greeted(server, run=control.id)
    server.advance(12.5)
    say(control, op="push_now", id="p3", session=member.id)
    assert member_link.sent[-1]["op"] == "push" and member_link.sent[-1]["id"] == "p3"
    reply = control_link.sent[-1]
    assert reply == {"op": "pushed", "id": "p3", "session": member.id, "sent": True, "idle_s": 12.5}
    say(control, op="push_now", id="p4", session="nobody")
    assert control_link.sent[-1] == {
        "op": "pushed", "id": "p4", "session": "nobody", "sent": False, "reason": "unknown_session"
    }  # fmt: skip


def test_an_unacknowledged_push_is_reported_to_the_run() -> None:
    server = VirtualServer(ack_check_s=1.0)
    control, control_link = greeted(server)
    member, member_link = greeted(server, run=control.id)
    member_link.tcp_unacked = Unacked(1, 3, 0.8, 0.3)
    say(control, op="push_now", id="p1", session=member.id)
    server.advance(0.9)
    assert control_link.sent[-1]["op"] == "pushed"
    server.advance(0.2)
    assert control_link.sent[-1] == {
        "op": "push_unacked", "id": "p1", "session": member.id, "unacked": 1, "retransmits": 3,
        "rto_s": 0.8, "retransmit_in_s": 0.5,
    }  # fmt: skip


def test_an_acknowledged_push_is_not_reported() -> None:
    server = VirtualServer(ack_check_s=1.0)
    control, control_link = greeted(server)
    member, member_link = greeted(server, run=control.id)
    member_link.tcp_unacked = Unacked(0, 0, 0.2, 1.0)
    say(control, op="push_now", id="p1", session=member.id)
    server.advance(2.0)
    assert control_link.sent[-1]["op"] == "pushed"
    member_link.tcp_unacked = None  # a transport that cannot tell: no report either
    say(control, op="push_now", id="p2", session=member.id)
    server.advance(2.0)
    assert control_link.sent[-1]["op"] == "pushed"


def test_a_push_into_a_reset_flow_is_reported_with_how_it_ended() -> None:
    server = VirtualServer(ack_check_s=1.0)
    control, control_link = greeted(server)
    member, _ = greeted(server, run=control.id)
    say(control, op="push_now", id="p1", session=member.id)
    member.end_reason = "reset"
    closed(member)
    server.advance(1.5)
    assert control_link.sent[-1] == {"op": "push_unacked", "id": "p1", "session": member.id, "ended": "reset"}


def test_ping_answers_with_the_address_seen_now() -> None:
    server = VirtualServer()
    session, link = greeted(server)
    say(session, op="ping", id="after")
    assert link.sent[-1] == {"op": "pong", "id": "after", "observed": "198.18.0.5:40000"}
    say(session, op="ping")
    assert link.sent[-1] == {"op": "pong"}


def test_sending_counts_as_activity() -> None:
    server = VirtualServer()
    session, _ = greeted(server)
    server.advance(5.0)
    say(session, op="ping")
    assert session.last_activity == server.now


# Release and the end of a run ---------------------------------------------------------


def test_only_the_owning_run_may_release_a_connection() -> None:
    server = VirtualServer()
    control, _ = greeted(server)
    other, _ = greeted(server)
    member, member_link = greeted(server, run=control.id)
    say(other, op="release", session=member.id)
    assert not member.closed
    say(control, op="release", session=member.id)
    assert member_link.sent[-1]["code"] == "released" and member_link.closed == "released"


def test_the_end_of_the_control_connection_ends_its_run() -> None:
    server = VirtualServer()
    control, _ = greeted(server)
    members = [greeted(server, run=control.id) for _ in range(3)]
    assert control.members is not None and len(control.members) == 3
    closed(control)
    assert all(link.closed == "run_ended" for _, link in members)
    assert control.id not in server.sessions


def test_a_member_cannot_own_a_run() -> None:
    server = VirtualServer()
    control, _ = greeted(server)
    member, _ = greeted(server, run=control.id)
    late, link = connect(server)
    say(late, op="hello", v=1, run=member.id)
    assert link.sent[-1]["code"] == "bad_run"


def test_a_closed_session_sends_nothing_more() -> None:
    server = VirtualServer()
    session, link = greeted(server)
    session.fail("shutdown", "bye", logged=True)
    count = len(link.sent)
    session.send({"op": "pong"})
    session.fail("again", "no")
    assert len(link.sent) == count and link.closed == "shutdown"


# UDP ---------------------------------------------------------------------------------


def test_udp_probes_open_only_where_the_server_listens() -> None:
    server = VirtualServer()
    session, link = greeted(server)
    say(session, op="udp_open", id="u1")
    assert link.sent[-1] == {"op": "udp_probe", "id": "u1", "probe": None, "reason": "no_udp"}
    server.udp_addresses.append(("198.18.0.1", 4041))
    say(session, op="udp_open", id="u2")
    hexid = link.sent[-1]["probe"]
    assert isinstance(hexid, str) and len(bytes.fromhex(hexid)) > 0
    say(session, op="push_now", id="p.replied.1", probe=hexid, copies=2)
    reply = link.sent[-1]
    assert reply["op"] == "pushed" and reply["probe"] == hexid and reply["id"] == "p.replied.1"
    say(session, op="release", probe=hexid)
    say(session, op="push_now", id="p.replied.2", probe=hexid, copies=1)
    assert link.sent[-1]["sent"] is False


# Exact words, logs and counts ------------------------------------------------------


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def server_log() -> Iterator[Captured]:
    handler = Captured()
    logger = logging.getLogger("natprobe.server")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"op": "hello", "v": 1}, {"op": "hello", "v": 1}], ("bad_state", "hello sent twice")),
        ([{"op": "ping"}], ("bad_state", "ping before hello")),
        ([{"op": "hello", "v": 1, "run": "gone"}], ("bad_run", "no such run: its control connection is gone")),
    ],
)
def test_errors_say_what_was_wrong(
    messages: list[dict[str, Any]], error: tuple[str, str], server_log: Captured
) -> None:
    server = VirtualServer()
    session, link = connect(server, port=5555)
    for msg in messages:
        say(session, **msg)
    assert link.sent[-1] == {"op": "error", "code": error[0], "message": error[1]}
    assert server_log.lines == [f"rejected 198.18.0.5:5555: {error[0]}: {error[1]}"]


def test_an_unauthorized_client_is_logged_once(server_log: Captured) -> None:
    server = VirtualServer(token="t")
    session, link = connect(server, port=7)
    say(session, op="hello", v=1)
    assert link.sent[-1] == {"op": "error", "code": "unauthorized", "message": "missing or wrong token"}
    assert server_log.lines == ["unauthorized client 198.18.0.5:7"]


def test_too_many_rounds_says_so() -> None:
    server = VirtualServer(max_rounds=1)
    session, link = greeted(server)
    say(session, op="push_after", id="a", idle_s=5)
    say(session, op="push_after", id="b", idle_s=5)
    assert link.sent[-1] == {"op": "error", "code": "too_many_rounds", "message": "too many rounds on one connection"}


def test_the_end_of_a_run_and_a_release_are_not_logged_as_rejections(server_log: Captured) -> None:
    server = VirtualServer()
    control, _ = greeted(server)
    first, first_link = greeted(server, run=control.id)
    second, second_link = greeted(server, run=control.id)
    say(control, op="release", session=first.id)
    assert first_link.sent[-1] == {"op": "error", "code": "released", "message": "the run released this connection"}
    closed(first)  # what its transport adapter does once the link is down
    assert control.members == {second}
    closed(control)
    assert second_link.sent[-1] == {"op": "error", "code": "run_ended", "message": "the run's control connection ended"}
    assert server_log.lines == []


def test_a_parked_hold_ends_at_max_idle_with_its_reason() -> None:
    server = VirtualServer(max_idle_s=60.0)
    session, link = connect(server)
    session.hello_overdue()
    server.advance(61.0)
    assert link.sent[-1] == {
        "op": "error",
        "code": "max_idle",
        "message": "held without a hello for the server's --max-idle",
    }
    closed(session)
    assert server.parked == 0 and server.parked_per_ip == {}


def test_parking_quotas_in_all_and_per_address() -> None:
    server = VirtualServer(max_parked=3, max_parked_per_ip=2)
    sessions = [connect(server, ip=ip)[0] for ip in ("198.18.0.5", "198.18.0.5", "198.18.0.5", "198.18.0.6",
                                                      "198.18.0.7")]  # fmt: skip
    for session in sessions:
        session.hello_overdue()
    assert [s.parked for s in sessions] == [True, True, False, True, False]
    assert server.parked == 3 and server.parked_per_ip == {"198.18.0.5": 2, "198.18.0.6": 1}
    say(sessions[0], op="hello", v=1)
    closed(sessions[3])
    assert server.parked == 1 and server.parked_per_ip == {"198.18.0.5": 1}


def test_hello_overdue_does_nothing_once_greeted_closed_or_parked() -> None:
    server = VirtualServer()
    greeted_session, link = greeted(server)
    greeted_session.hello_overdue()
    assert not greeted_session.closed and link.closed is None
    parked, _ = connect(server)
    parked.hello_overdue()
    parked.hello_overdue()
    assert server.parked == 1 and not parked.closed
    gone, gone_link = connect(server)
    gone.fail("shutdown", "bye", logged=True)
    gone.hello_overdue()
    assert gone_link.sent == [{"op": "error", "code": "shutdown", "message": "bye"}]


def test_a_beat_is_answered_after_hello_too_and_does_not_count_as_speaking() -> None:
    server = VirtualServer()
    session, link = greeted(server)
    say(session, op="beat", id="h2")
    assert link.sent[-1] == {"op": "beat_ack", "id": "h2"}
    quiet, _ = connect(server)
    say(quiet, op="beat", id="h3")
    assert quiet.spoke is False
    say(quiet, op="hello", v=1)
    assert quiet.spoke is True


def test_session_ids_are_long_random_and_distinct() -> None:
    server = VirtualServer()
    ids = {greeted(server)[0].id for _ in range(20)}
    assert len(ids) == 20 and all(len(i) == 16 for i in ids)


def test_push_idle_is_rounded_to_a_tenth_of_a_millisecond() -> None:
    server = VirtualServer()
    control, control_link = greeted(server)
    member, member_link = greeted(server, run=control.id)
    server.advance(1.234567)
    say(control, op="push_now", id="p1", session=member.id)
    assert member_link.sent[-1]["idle_s"] == 1.2346 and control_link.sent[-1]["idle_s"] == 1.2346


def test_a_push_now_on_a_connection_of_no_run_reports_to_whoever_asked() -> None:
    server = VirtualServer(ack_check_s=1.0)
    asker, asker_link = greeted(server)
    lone, lone_link = greeted(server)
    lone_link.tcp_unacked = Unacked(2, 0, 0.2, 0.5)
    say(asker, op="push_now", id="p1", session=lone.id)
    server.advance(1.5)
    assert asker_link.sent[-1] == {"op": "push_unacked", "id": "p1", "session": lone.id, "unacked": 2,
                                   "retransmits": 0, "rto_s": 0.2, "retransmit_in_s": 0.0}  # fmt: skip


def test_an_unacked_report_counts_segments_not_retransmissions() -> None:
    server = VirtualServer(ack_check_s=1.0)
    control, control_link = greeted(server)
    member, member_link = greeted(server, run=control.id)
    member_link.tcp_unacked = Unacked(0, 9, 0.2, 0.1)
    say(control, op="push_now", id="p1", session=member.id)
    server.advance(1.5)
    assert control_link.sent[-1]["op"] == "pushed"


@pytest.mark.parametrize(("ended", "reported"), [("timeout", True), ("reset", True), ("closed", False)])
def test_a_push_into_a_dead_flow_is_reported_by_how_it_died(ended: str, reported: bool) -> None:
    server = VirtualServer(ack_check_s=1.0)
    control, control_link = greeted(server)
    member, _ = greeted(server, run=control.id)
    say(control, op="push_now", id="p1", session=member.id)
    member.end_reason = ended
    closed(member)
    server.advance(1.5)
    last = control_link.sent[-1]
    assert (last["op"] == "push_unacked") is reported
    if reported:
        assert last["ended"] == ended


def test_a_push_after_timer_goes_with_its_session() -> None:
    server = VirtualServer()
    session, link = greeted(server)
    say(session, op="push_after", id="b0", idle_s=10)
    assert server.pending() == 1
    closed(session)
    assert server.pending() == 0
    server.advance(20.0)
    assert not any(m["op"] == "push" for m in link.sent)


def test_push_now_takes_the_place_of_a_pending_push_after() -> None:
    server = VirtualServer()
    control, _ = greeted(server)
    member, member_link = greeted(server, run=control.id)
    say(member, op="push_after", id="b0", idle_s=10)
    say(control, op="push_now", id="p1", session=member.id)
    server.advance(20.0)
    assert [m["id"] for m in member_link.sent if m["op"] == "push"] == ["p1"]


def test_the_registry_forgets_a_session_by_its_own_id_only() -> None:
    server = VirtualServer()
    session, _ = greeted(server)
    impostor, _ = connect(server)
    impostor.id = session.id  # never greeted: must not take the other's entry out
    closed(impostor)
    assert server.sessions[session.id] is session
    closed(session)
    assert session.id not in server.sessions and server.per_ip == {} and server.live == set()


def test_udp_news_goes_to_the_owning_session() -> None:
    from probe.core.udp_table import Report

    server = VirtualServer()
    session, link = greeted(server)
    server.deliver(Report(session.id, {"op": "udp_seen", "probe": "ab", "observed": "198.18.0.9:1"}))
    assert link.sent[-1] == {"op": "udp_seen", "probe": "ab", "observed": "198.18.0.9:1"}
    server.deliver(Report("nobody", {"op": "udp_seen"}))
    assert link.sent[-1]["op"] == "udp_seen" and len(link.sent) == 2


def test_udp_probes_are_refused_with_the_tables_reason_and_freed_with_the_run() -> None:
    server = VirtualServer(udp=UdpLimits(max_per_owner=1))
    server.udp_addresses.append(("198.18.0.1", 4041))
    session, link = greeted(server)
    say(session, op="udp_open", id="u1")
    first = link.sent[-1]["probe"]
    say(session, op="udp_open", id="u2")
    assert link.sent[-1] == {"op": "udp_probe", "id": "u2", "probe": None, "reason": "session_full"}
    assert server.udp.per_ip == {"198.18.0.5": 1}
    say(session, op="release", probe=first)
    assert server.udp.per_ip == {}
    say(session, op="udp_open", id="u3")
    assert isinstance(link.sent[-1]["probe"], str)
    closed(session)
    assert server.udp.probes == {}


def test_a_udp_push_sends_its_copies_through_the_adapter() -> None:
    server = VirtualServer()
    server.udp_addresses.append(("198.18.0.1", 4041))
    session, link = greeted(server)
    say(session, op="udp_open", id="u1")
    hexid = link.sent[-1]["probe"]
    probe = server.udp.probes[bytes.fromhex(hexid)]
    probe.addr = ("198.18.0.5", 50000)
    probe.received, probe.validated = 1000, True  # bound and answered: no amplification limit
    say(session, op="push_now", id="p1", probe=hexid, copies=2)
    assert len(server.udp_sent) == 2 and link.sent[-1]["sent"] is True


def test_the_rejection_log_is_rate_limited(server_log: Captured) -> None:
    now = [0.0]
    limiter = RateLimitedLog(5.0, lambda: now[0])
    for _ in range(100):
        limiter.warn("rejected x")
    assert server_log.lines == ["rejected x"] * 5 and limiter.suppressed == 95
    now[0] = 0.1  # half a line's allowance: still suppressed
    limiter.warn("rejected x")
    assert len(server_log.lines) == 5 and limiter.suppressed == 96
    now[0] = 0.2  # one line's worth
    limiter.warn("rejected y")
    assert server_log.lines[-1] == "rejected y (96 similar lines suppressed)" and limiter.suppressed == 0
    now[0] = 10.0  # a long quiet time refills at most ``rate`` lines
    for _ in range(7):
        limiter.warn("z")
    assert server_log.lines[-5:] == ["z"] * 5 and limiter.suppressed == 2


# Design connections (core/designs.py) ---------------------------------------------


def test_a_design_connection_gets_the_servers_keepalive_and_the_welcome_says_so() -> None:
    server = VirtualServer()
    session, link = connect(server)
    say(session, op="hello", v=1, keepalive_s=1)
    assert link.keepalive == 1 and link.last("welcome")["keepalive_s"] == 1
    other, other_link = connect(server, port=40001)
    other_link.can_keepalive = False
    say(other, op="hello", v=1, keepalive_s=3)
    # Where the OS cannot, the welcome says null rather than pretend.
    assert other_link.last("welcome")["keepalive_s"] is None
    # An ordinary hello asks for nothing and gets nothing.
    _, plain_link = greeted(server)
    assert plain_link.keepalive is None and "keepalive_s" not in plain_link.last("welcome")


def test_a_design_connection_gets_a_tick_every_so_often_until_it_ends() -> None:
    server = VirtualServer()
    session, link = connect(server)
    say(session, op="hello", v=1, tick_every_s=1.5)
    assert link.last("welcome")["tick_every_s"] == 1.5
    server.advance(1.4)
    assert [m["op"] for m in link.sent] == ["welcome"]
    server.advance(3.0)
    assert [m["op"] for m in link.sent] == ["welcome", "tick", "tick"]
    closed(session)
    server.advance(10.0)
    assert [m["op"] for m in link.sent].count("tick") == 2 and server.pending() == 0


def test_the_clients_tick_is_not_answered_but_counts_as_activity() -> None:
    server = VirtualServer()
    session, link = greeted(server)
    server.advance(5.0)
    say(session, op="tick")
    assert link.sent[-1]["op"] == "welcome" and link.closed is None
    assert session.last_activity == server.now


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("keepalive_s", 0, "bad_keepalive"),
        ("keepalive_s", 1.5, "bad_keepalive"),
        ("keepalive_s", True, "bad_keepalive"),
        ("keepalive_s", 7201, "bad_keepalive"),
        ("tick_every_s", 0.01, "bad_tick"),
        ("tick_every_s", 7201, "bad_tick"),
        ("tick_every_s", "1", "bad_tick"),
    ],
)
def test_a_design_hello_out_of_range_is_refused(field: str, value: Any, code: str) -> None:
    server = VirtualServer()
    session, link = connect(server)
    say(session, op="hello", v=1, **{field: value})
    assert link.closed == code and link.last("error")["code"] == code


def test_a_design_hello_at_the_edges_of_its_ranges_is_taken() -> None:
    server = VirtualServer()
    for fields in ({"keepalive_s": 7200}, {"keepalive_s": 1}, {"tick_every_s": 0.05}, {"tick_every_s": 7200}):
        session, link = connect(server)
        say(session, op="hello", v=1, **fields)
        assert link.closed is None and link.last("welcome")["features"] == ["tick", "keepalive_s", "tick_every_s"]
        closed(session)


def test_a_design_hello_out_of_range_says_the_range() -> None:
    server = VirtualServer()
    session, link = connect(server)
    say(session, op="hello", v=1, keepalive_s=0)
    assert link.last("error")["message"] == "'keepalive_s' must be an integer from 1 to 7200"
    session, link = connect(server, port=40001)
    say(session, op="hello", v=1, tick_every_s=0)
    assert link.last("error")["message"] == "'tick_every_s' must be a number from 0.05 to 7200"


def test_ticks_stop_once_the_session_fails() -> None:
    server = VirtualServer()
    session, link = connect(server)
    say(session, op="hello", v=1, tick_every_s=1.0)
    server.advance(1.5)
    session.fail("released", "done", logged=True)
    server.advance(5.0)
    assert [m["op"] for m in link.sent] == ["welcome", "tick", "error"] and server.pending() == 0
