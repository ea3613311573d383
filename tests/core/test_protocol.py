from __future__ import annotations

import math

import pytest

from probe.core.protocol import (
    MAX_LINE,
    Hello,
    LineBuffer,
    ProtocolError,
    PushAfter,
    PushNow,
    decode,
    encode,
    validate_client,
)


def test_round_trip() -> None:
    line = encode({"op": "push_after", "id": "a", "idle_s": 1.5})
    assert line.endswith(b"\n")
    assert validate_client(decode(line[:-1]), 10) == PushAfter("a", 1.5)


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"\xff\xfe", "bad_utf8"),
        (b"{not json", "bad_json"),
        (b"[1,2]", "bad_message"),
        (b'{"v":1}', "bad_message"),
        (b"[" * 100_000 + b"]" * 100_000, "too_long"),
        (b'{"op":"push_after","id":"a","idle_s":NaN}', "bad_json"),
    ],
)
def test_decode_rejects(line: bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode(line)
    assert info.value.code == code


def test_deep_nesting_inside_the_line_limit_is_an_error_not_a_crash() -> None:
    line = b"[" * 2000 + b"]" * 2000
    assert len(line) < MAX_LINE
    with pytest.raises(ProtocolError):
        decode(line)


@pytest.mark.parametrize(
    ("msg", "code"),
    [
        ({"op": "hello", "v": 2}, "bad_version"),
        ({"op": "hello", "v": True}, "bad_version"),
        ({"op": "push_after", "id": "a", "idle_s": -1}, "bad_idle"),
        ({"op": "push_after", "id": "a", "idle_s": math.inf}, "bad_idle"),
        ({"op": "push_after", "id": "a", "idle_s": 1e9}, "bad_idle"),
        ({"op": "push_after", "id": "a", "idle_s": "5"}, "bad_idle"),
        ({"op": "push_after", "id": "a", "idle_s": True}, "bad_idle"),
        ({"op": "push_after", "id": 5, "idle_s": 1}, "bad_id"),
        ({"op": "push_now", "id": "a"}, "bad_id"),
        ({"op": "dance"}, "unknown_op"),
    ],
)
def test_validate_rejects(msg: dict[str, object], code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        validate_client(msg, 7800)
    assert info.value.code == code


def test_validate_accepts() -> None:
    assert validate_client({"op": "hello", "v": 1, "token": "t"}, 10) == Hello(1, "t")
    assert validate_client({"op": "push_now", "id": "p", "session": "s"}, 10) == PushNow("p", "s")


def test_line_buffer_splits_and_keeps_partial_lines() -> None:
    buf = LineBuffer()
    assert buf.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert buf.pending == 4
    assert buf.feed(b":2}\r\n") == [b'{"b":2}']
    assert buf.pending == 0


def test_line_buffer_refuses_an_overlong_line_before_it_ends() -> None:
    buf = LineBuffer()
    with pytest.raises(ProtocolError) as info:
        buf.feed(b"x" * (MAX_LINE + 1))
    assert info.value.code == "too_long"
