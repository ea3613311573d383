"""UDP datagram format: round trips, and a parser that refuses anything else."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from probe.core.udp_wire import (
    CLIENT_KINDS,
    CLIENT_SIZE,
    HEADER_SIZE,
    MAGIC,
    MAX_DATAGRAM,
    MIN_CLIENT_SIZE,
    NO_COOKIE,
    SERVER_KINDS,
    Datagram,
    Kind,
    parse,
    parse_client,
    parse_server,
)

PROBE = bytes(range(16))


def test_header_is_33_bytes_and_padding_fills_to_the_size_asked() -> None:
    assert HEADER_SIZE == 33
    assert len(Datagram(Kind.PUSH, PROBE).encode()) == 33
    padded = Datagram(Kind.HELLO, PROBE, 5).encode(CLIENT_SIZE)
    assert len(padded) == CLIENT_SIZE
    assert padded[33:] == bytes(CLIENT_SIZE - 33)
    # Never truncated below the header, never padded past the maximum.
    assert len(Datagram(Kind.HELLO, PROBE).encode(10)) == 33
    assert len(Datagram(Kind.HELLO, PROBE).encode(10_000)) == MAX_DATAGRAM


def test_round_trip_keeps_every_field() -> None:
    msg = Datagram(Kind.ECHO, PROBE, 0xFFFFFFFF, b"cookie!!")
    data = msg.encode(CLIENT_SIZE)
    assert data[:4] == MAGIC
    assert parse_client(data) == msg
    reply = Datagram(Kind.REPLY, PROBE, 3, b"12345678")
    assert parse_server(reply.encode()) == reply


def test_each_side_accepts_only_the_other_sides_kinds() -> None:
    assert {Kind.HELLO, Kind.ECHO} == CLIENT_KINDS
    assert {Kind.REPLY, Kind.PUSH} == SERVER_KINDS
    push = Datagram(Kind.PUSH, PROBE).encode(CLIENT_SIZE)
    hello = Datagram(Kind.HELLO, PROBE).encode(CLIENT_SIZE)
    assert parse_client(push) is None
    assert parse_server(hello) is None
    assert parse_server(push) is not None


def test_client_datagrams_must_be_padded_and_bounded() -> None:
    msg = Datagram(Kind.HELLO, PROBE)
    assert parse_client(msg.encode(MIN_CLIENT_SIZE - 1)) is None
    assert parse_client(msg.encode(MIN_CLIENT_SIZE)) == msg
    assert parse_client(msg.encode(MAX_DATAGRAM)) == msg
    assert parse_client(msg.encode(MAX_DATAGRAM) + b"\0") is None
    assert parse(msg.encode()[:-1], CLIENT_KINDS) is None


def test_wrong_magic_and_unknown_kinds_are_refused() -> None:
    good = Datagram(Kind.HELLO, PROBE).encode(CLIENT_SIZE)
    assert parse_client(b"NPU2" + good[4:]) is None
    assert parse_client(good[:4] + bytes([3]) + good[5:]) is None
    assert parse_client(good[:4] + bytes([0]) + good[5:]) is None


@given(st.binary(max_size=1400))
def test_parser_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    for parsed in (parse_client(data), parse_server(data), parse(data, CLIENT_KINDS | SERVER_KINDS)):
        if parsed is not None:
            assert data.startswith(MAGIC)
            assert HEADER_SIZE <= len(data) <= MAX_DATAGRAM
            assert Datagram(parsed.kind, parsed.probe, parsed.seq, parsed.cookie).encode() == data[:HEADER_SIZE]


@given(
    st.sampled_from(list(Kind)),
    st.binary(min_size=16, max_size=16),
    st.integers(0, 0xFFFFFFFF),
    st.binary(min_size=8, max_size=8),
    st.binary(max_size=1300),
)
def test_a_valid_header_parses_whatever_padding_follows(
    kind: Kind, probe: bytes, seq: int, cookie: bytes, tail: bytes
) -> None:
    data = (Datagram(kind, probe, seq, cookie).encode() + tail)[:MAX_DATAGRAM]
    parsed = parse(data, CLIENT_KINDS | SERVER_KINDS)
    assert parsed == Datagram(kind, probe, seq, cookie)
    assert (parse_client(data) is not None) == (kind in CLIENT_KINDS and len(data) >= MIN_CLIENT_SIZE)
    assert bytes(8) == NO_COOKIE
