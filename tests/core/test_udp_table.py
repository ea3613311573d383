"""The server's UDP probe table: ownership, limits and the 3x amplification rule."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probe.core.targets import format_address
from probe.core.udp_table import AMPLIFICATION, ProbeTable, Refused, UdpLimits
from probe.core.udp_wire import CLIENT_SIZE, HEADER_SIZE, MIN_CLIENT_SIZE, Datagram, Kind, parse_server

A = ("198.18.0.1", 40000)
B = ("198.18.0.1", 40001)


def counter_tokens() -> ProbeTable:
    counter = itertools.count(1)
    return ProbeTable(token=lambda n: next(counter).to_bytes(n, "big"))


def hello(
    probe: bytes, kind: Kind = Kind.HELLO, seq: int = 0, cookie: bytes = bytes(8), size: int = CLIENT_SIZE
) -> bytes:
    return Datagram(kind, probe, seq, cookie).encode(size)


def test_open_issues_distinct_ids_and_counts_per_owner_and_ip() -> None:
    table = ProbeTable()
    one = table.open("s1", "198.18.0.9", 0.0)
    two = table.open("s1", "198.18.0.9", 0.0)
    assert one.id != two.id and len(one.id) == 16
    assert table.by_owner == {"s1": {one.id, two.id}}
    assert table.per_ip == {"198.18.0.9": 2}
    assert table.release("s2", one.id) is False  # not its owner
    assert table.release("s1", one.id) is True
    assert table.release("s1", one.id) is False
    assert table.per_ip == {"198.18.0.9": 1}
    assert table.drop_owner("s1") == 1
    assert table.probes == {} and table.by_owner == {} and table.per_ip == {}


@pytest.mark.parametrize(
    ("limits", "owners", "reason"),
    [
        (UdpLimits(max_probes=2), ["a", "b", "c"], "server_full"),
        (UdpLimits(max_per_owner=2), ["a", "a", "a"], "session_full"),
        (UdpLimits(max_per_ip=2), ["a", "b", "c"], "address_full"),
    ],
)
def test_limits_refuse_the_probe_past_them(limits: UdpLimits, owners: list[str], reason: str) -> None:
    table = ProbeTable(limits)
    for owner in owners[:2]:
        table.open(owner, "198.18.0.9", 0.0)
    with pytest.raises(Refused) as refused:
        table.open(owners[2], "198.18.0.9", 0.0)
    assert refused.value.reason == reason and str(refused.value) == reason
    assert len(table.probes) == 2


def test_hello_binds_without_an_answer_and_reports_to_the_owner() -> None:
    table = ProbeTable()
    probe = table.open("s1", "198.18.0.9", 0.0)
    sends, report = table.datagram(hello(probe.id, seq=4), A, 1.5)
    assert sends == []
    assert report is not None and report.owner == "s1"
    assert report.message == {
        "op": "udp_seen",
        "probe": probe.id.hex(),
        "seq": 4,
        "observed": "198.18.0.1:40000",
        "replied": False,
        "validated": False,
        "rebound": False,
    }
    assert probe.addr == A and probe.received == CLIENT_SIZE and probe.last_activity == 1.5


def test_echo_is_answered_with_a_smaller_reply_carrying_the_cookie() -> None:
    table = ProbeTable()
    probe = table.open("s1", "198.18.0.9", 0.0)
    sends, report = table.datagram(hello(probe.id, Kind.ECHO, seq=9), A, 1.0, via="sock")
    assert len(sends) == 1 and sends[0].addr == A and sends[0].via == "sock"
    reply = parse_server(sends[0].data)
    assert reply is not None and reply.kind is Kind.REPLY and reply.seq == 9 and reply.cookie == probe.cookie
    assert len(sends[0].data) == HEADER_SIZE < MIN_CLIENT_SIZE
    assert report is not None and report.message["replied"] is True


def test_echoing_the_cookie_validates_the_address_and_lifts_the_budget() -> None:
    table = ProbeTable()
    probe = table.open("s1", "198.18.0.9", 0.0)
    table.datagram(hello(probe.id, Kind.ECHO), A, 0.0)
    assert probe.validated is False
    _, wrong = table.datagram(hello(probe.id, cookie=b"xxxxxxxx"), A, 0.1)
    assert wrong is not None and wrong.message["validated"] is False
    _, report = table.datagram(hello(probe.id, cookie=probe.cookie), A, 0.2)
    assert report is not None and report.message["validated"] is True
    pushed = sum(len(table.push("s1", probe.id, n, 3, 1.0)[0]) for n in range(100))
    assert pushed == 300


def test_unvalidated_address_gets_at_most_three_times_what_it_sent() -> None:
    table = ProbeTable()
    probe = table.open("s1", "198.18.0.9", 0.0)
    table.datagram(hello(probe.id, size=MIN_CLIENT_SIZE), A, 0.0)
    budget = AMPLIFICATION * MIN_CLIENT_SIZE
    sent = 0
    answers = []
    for n in range(20):
        sends, fields = table.push("s1", probe.id, n, 3, float(n))
        sent += sum(len(s.data) for s in sends)
        answers.append(fields)
    assert sent <= budget and sent > budget - HEADER_SIZE
    assert answers[0] == {"sent": True, "idle_s": 0.0, "copies": 3}
    assert answers[-1] == {"sent": False, "reason": "amplification"}
    assert probe.sent == sent


def test_a_new_source_address_starts_a_new_budget_and_needs_a_new_cookie() -> None:
    table = counter_tokens()
    probe = table.open("s1", "198.18.0.9", 0.0)
    table.datagram(hello(probe.id, Kind.ECHO), A, 0.0)
    old_cookie = probe.cookie
    table.datagram(hello(probe.id, cookie=old_cookie), A, 0.1)
    assert probe.validated
    _, report = table.datagram(hello(probe.id, cookie=old_cookie), B, 0.2)
    assert report is not None and report.message["rebound"] is True and report.message["observed"] == format_address(*B)
    assert probe.addr == B and probe.validated is False and probe.cookie != old_cookie
    assert probe.received == CLIENT_SIZE and probe.sent == 0
    sends, _ = table.push("s1", probe.id, 1, 3, 0.3)
    assert {s.addr for s in sends} == {B}


def test_push_reports_idle_since_last_activity_and_restarts_it() -> None:
    table = ProbeTable()
    probe = table.open("s1", "198.18.0.9", 0.0)
    table.datagram(hello(probe.id), A, 10.0)
    sends, fields = table.push("s1", probe.id, 7, 2, 25.5)
    assert fields == {"sent": True, "idle_s": 15.5, "copies": 2}
    assert all(parse_server(s.data) == Datagram(Kind.PUSH, probe.id, 7) for s in sends)
    assert table.push("s1", probe.id, 8, 1, 26.0)[1]["idle_s"] == 0.5


@pytest.mark.parametrize(("copies", "sent"), [(0, 1), (1, 1), (3, 3), (9, 3)])
def test_copies_are_clamped(copies: int, sent: int) -> None:
    table = ProbeTable()
    probe = table.open("s1", "198.18.0.9", 0.0)
    table.datagram(hello(probe.id), A, 0.0)
    assert len(table.push("s1", probe.id, 1, copies, 1.0)[0]) == sent


def test_push_needs_the_owner_and_a_bound_probe() -> None:
    table = ProbeTable()
    probe = table.open("s1", "198.18.0.9", 0.0)
    assert table.push("s1", probe.id, 1, 3, 1.0) == ([], {"sent": False, "reason": "not_bound"})
    table.datagram(hello(probe.id), A, 0.0)
    assert table.push("s2", probe.id, 1, 3, 1.0) == ([], {"sent": False, "reason": "unknown_probe"})
    assert table.push("s1", bytes(16), 1, 3, 1.0) == ([], {"sent": False, "reason": "unknown_probe"})


def test_junk_unknown_ids_and_short_datagrams_get_nothing_back() -> None:
    table = ProbeTable()
    probe = table.open("s1", "198.18.0.9", 0.0)
    for data in (b"", b"junk" * 50, hello(bytes(16), Kind.ECHO), hello(probe.id, Kind.ECHO, size=MIN_CLIENT_SIZE - 1)):
        assert table.datagram(data, A, 0.0) == ([], None)
    assert table.dropped == 4
    assert probe.addr is None


def test_a_flood_from_one_address_is_cut_to_its_rate() -> None:
    table = ProbeTable(UdpLimits(rate_per_ip=10.0, burst_per_ip=20.0))
    probe = table.open("s1", "198.18.0.9", 0.0)
    answered = sum(bool(table.datagram(hello(probe.id, Kind.ECHO), A, 0.0)[0]) for _ in range(100))
    assert answered == 20
    # One second later, ten more tokens.
    answered = sum(bool(table.datagram(hello(probe.id, Kind.ECHO), A, 1.0)[0]) for _ in range(100))
    assert answered == 10
    # Another address has its own bucket.
    assert table.datagram(hello(probe.id, Kind.ECHO), ("198.18.0.2", 1), 1.0)[0]


def test_rate_table_forgets_the_oldest_address_beyond_its_size() -> None:
    table = ProbeTable(UdpLimits(max_tracked_ips=3, rate_per_ip=0.0, burst_per_ip=1.0))
    for n in range(4):
        table.datagram(b"x", (f"198.18.1.{n}", 1), 0.0)
    assert list(table._rates) == ["198.18.1.1", "198.18.1.2", "198.18.1.3"]
    # The forgotten address starts afresh with a full bucket; the others stay empty.
    assert table._take("198.18.1.0", 0.0) is True
    assert table._take("198.18.1.3", 0.0) is False


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["hello", "echo", "cookie", "junk", "push", "other_addr"]),
            st.integers(MIN_CLIENT_SIZE, 1200),
        ),
        max_size=60,
    )
)
def test_no_sequence_of_inputs_beats_three_times_before_validation(steps: list[tuple[str, int]]) -> None:
    table = ProbeTable(UdpLimits(rate_per_ip=1e9, burst_per_ip=1e9))
    probe = table.open("s1", "198.18.0.9", 0.0)
    received: dict[tuple[str, int], int] = {}
    sent: dict[tuple[str, int], int] = {}
    validated: set[tuple[str, int]] = set()
    for n, (step, size) in enumerate(steps):
        addr = B if step == "other_addr" else A
        if step == "push":
            sends, _ = table.push("s1", probe.id, n, 3, float(n))
        else:
            kind = Kind.ECHO if step in ("echo", "other_addr") else Kind.HELLO
            cookie = probe.cookie if step == "cookie" else bytes(8)
            data = b"\xff" * size if step == "junk" else hello(probe.id, kind, n, cookie, size)
            before = probe.addr
            sends, _ = table.datagram(data, addr, float(n))
            if step != "junk":
                if before != addr:
                    received[addr] = sent[addr] = 0
                    validated.discard(addr)
                received[addr] = received.get(addr, 0) + size
                if step == "cookie" and before == addr:
                    validated.add(addr)
        for s in sends:
            sent[s.addr] = sent.get(s.addr, 0) + len(s.data)
            if s.addr not in validated:
                assert sent[s.addr] <= AMPLIFICATION * received[s.addr]


def test_the_budget_allows_exactly_three_times_what_came_in() -> None:
    table = ProbeTable()
    probe = table.open("s1", "198.18.0.9", 5.0)
    assert probe.last_activity == 5.0
    # 99 bytes in: 297 out, nine 33-byte pushes, not one more.
    table.datagram(hello(probe.id, size=99), A, 6.0, via="sock")
    assert probe.via == "sock"
    sends = [s for n in range(3) for s in table.push("s1", probe.id, n, 3, 7.0)[0]]
    assert len(sends) == 9 and probe.sent == 297
    assert {s.via for s in sends} == {"sock"}
    assert table.push("s1", probe.id, 9, 1, 7.0)[1] == {"sent": False, "reason": "amplification"}


def test_replies_add_up_and_idle_is_reported_to_a_tenth_of_a_millisecond() -> None:
    table = ProbeTable()
    probe = table.open("s1", "198.18.0.9", 0.0)
    for _ in range(2):
        table.datagram(hello(probe.id, Kind.ECHO), A, 10.0)
    assert probe.sent == 2 * HEADER_SIZE
    assert table.push("s1", probe.id, 1, 1, 10.123456)[1]["idle_s"] == 0.1235


def test_ipv6_sources_are_reported_in_brackets() -> None:
    table = ProbeTable()
    probe = table.open("s1", "2001:db8::9", 0.0)
    _, report = table.datagram(hello(probe.id), ("2001:db8::1", 5), 0.0)
    assert report is not None and report.message["observed"] == "[2001:db8::1]:5"
    assert format_address("198.18.0.1", 7) == "198.18.0.1:7"


def test_a_limit_of_one_allows_one_and_unknown_owners_hold_nothing() -> None:
    table = ProbeTable(UdpLimits(max_per_ip=1))
    table.open("s1", "198.18.0.9", 0.0)
    with pytest.raises(Refused):
        table.open("s2", "198.18.0.9", 0.0)
    assert table.drop_owner("nobody") == 0


def test_every_datagram_cut_by_the_rate_is_counted() -> None:
    table = ProbeTable(UdpLimits(rate_per_ip=10.0, burst_per_ip=20.0))
    probe = table.open("s1", "198.18.0.9", 0.0)
    for _ in range(100):
        table.datagram(hello(probe.id), A, 0.0)
    assert table.dropped == 80
