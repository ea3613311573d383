"""Every client message and every refusal, field by field, with the exact
code and message a client is told (they reach the user's terminal)."""

from __future__ import annotations

import pytest

from probe.core.protocol import (
    MAX_ID_LEN,
    MAX_LINE,
    Ack,
    Beat,
    Hello,
    LineBuffer,
    Ping,
    ProtocolError,
    PushAfter,
    PushNow,
    Release,
    UdpOpen,
    decode,
    encode,
    json_number,
    server_close_reason,
    validate_client,
)


def refusal(msg: dict[str, object], max_idle: float = 100.0) -> tuple[str, str]:
    with pytest.raises(ProtocolError) as info:
        validate_client(msg, max_idle)
    assert str(info.value) == info.value.message
    return info.value.code, info.value.message


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        ({"op": "hello", "v": 1}, Hello(1, None, None)),
        ({"op": "hello", "v": 1, "token": "t"}, Hello(1, "t", None)),
        ({"op": "hello", "v": 1, "run": "r1"}, Hello(1, None, "r1")),
        ({"op": "push_after", "id": "a", "idle_s": 0}, PushAfter("a", 0.0)),
        ({"op": "push_after", "id": "a", "idle_s": 100}, PushAfter("a", 100.0)),
        ({"op": "push_now", "id": "p", "session": "s"}, PushNow("p", "s")),
        ({"op": "ack", "id": "x"}, Ack("x")),
        ({"op": "ping"}, Ping(None)),
        ({"op": "ping", "id": "i"}, Ping("i")),
        ({"op": "ping", "id": 5}, Ping(None)),
        ({"op": "ping", "id": "x" * MAX_ID_LEN}, Ping("x" * MAX_ID_LEN)),
        ({"op": "ping", "id": "x" * (MAX_ID_LEN + 1)}, Ping(None)),
        ({"op": "beat", "id": "b"}, Beat("b")),
        ({"op": "release", "session": "s"}, Release("s")),
        ({"op": "release", "probe": "0a" * 16}, Release("", "0a" * 16)),
        ({"op": "udp_open", "id": "u1"}, UdpOpen("u1")),
        ({"op": "push_now", "id": "p", "probe": "f" * 32}, PushNow("p", "", "f" * 32, 3)),
        ({"op": "push_now", "id": "p", "probe": "f" * 32, "copies": 1}, PushNow("p", "", "f" * 32, 1)),
        ({"op": "push_now", "id": "p", "probe": "f" * 32, "copies": 3}, PushNow("p", "", "f" * 32, 3)),
    ],
)
def test_valid_messages_are_typed(msg: dict[str, object], expected: object) -> None:
    assert validate_client(msg, 100.0) == expected


@pytest.mark.parametrize(
    ("msg", "code", "message"),
    [
        ({"op": "udp_open"}, "bad_id", None),
        ({"op": "push_now", "id": "p", "probe": "F" * 32}, "bad_probe", "'probe' must be 32 lowercase hex digits"),
        ({"op": "push_now", "id": "p", "probe": "f" * 31}, "bad_probe", None),
        ({"op": "push_now", "id": "p", "probe": "X" * 32}, "bad_probe", None),
        ({"op": "push_now", "id": "p", "probe": "f" * 33}, "bad_probe", None),
        ({"op": "push_now", "id": "p", "probe": 5}, "bad_probe", None),
        ({"op": "release", "probe": "g" * 32}, "bad_probe", None),
        (
            {"op": "push_now", "id": "p", "probe": "f" * 32, "copies": 0},
            "bad_copies",
            "'copies' must be an integer from 1 to 3",
        ),
        ({"op": "push_now", "id": "p", "probe": "f" * 32, "copies": 4}, "bad_copies", None),
        ({"op": "push_now", "id": "p", "probe": "f" * 32, "copies": True}, "bad_copies", None),
        ({"op": "push_now", "id": "p", "probe": "f" * 32, "copies": 2.0}, "bad_copies", None),
        ({"op": "hello", "v": 2}, "bad_version", "unsupported protocol version 2; this server speaks 1"),
        ({"op": "hello"}, "bad_version", "unsupported protocol version None; this server speaks 1"),
        ({"op": "hello", "v": True}, "bad_version", "unsupported protocol version True; this server speaks 1"),
        ({"op": "hello", "v": 1, "token": 5}, "bad_token", "'token' must be a string"),
        (
            {"op": "hello", "v": 1, "run": ""},
            "bad_id",
            f"'run' must be a non-empty string of at most {MAX_ID_LEN} characters",
        ),
        (
            {"op": "push_after", "idle_s": 1},
            "bad_id",
            f"'id' must be a non-empty string of at most {MAX_ID_LEN} characters",
        ),
        ({"op": "push_after", "id": "x" * (MAX_ID_LEN + 1), "idle_s": 1}, "bad_id", None),
        ({"op": "push_after", "id": 7, "idle_s": 1}, "bad_id", None),
        ({"op": "push_after", "id": "a"}, "bad_idle", "'idle_s' must be a number"),
        ({"op": "push_after", "id": "a", "idle_s": "1"}, "bad_idle", "'idle_s' must be a number"),
        ({"op": "push_after", "id": "a", "idle_s": True}, "bad_idle", "'idle_s' must be a number"),
        ({"op": "push_after", "id": "a", "idle_s": -0.5}, "bad_idle", "'idle_s' must be a finite number >= 0"),
        ({"op": "push_after", "id": "a", "idle_s": 1e400}, "bad_idle", "'idle_s' must be a finite number >= 0"),
        (
            {"op": "push_after", "id": "a", "idle_s": 100.5},
            "bad_idle",
            "idle_s 100.5 exceeds this server's limit of 100",
        ),
        (
            {"op": "push_now", "id": "p"},
            "bad_id",
            f"'session' must be a non-empty string of at most {MAX_ID_LEN} characters",
        ),
        ({"op": "ack"}, "bad_id", None),
        ({"op": "beat", "id": ""}, "bad_id", None),
        ({"op": "release"}, "bad_id", None),
        ({"op": "dance"}, "unknown_op", "unknown op 'dance'"),
        ({"op": "d" * 100}, "unknown_op", f"unknown op {'d' * 40!r}"),
    ],
)
def test_invalid_messages_say_exactly_what_is_wrong(msg: dict[str, object], code: str, message: str | None) -> None:
    got_code, got_message = refusal(msg)
    assert got_code == code
    if message is not None:
        assert got_message == message


def test_an_id_of_exactly_the_limit_is_accepted() -> None:
    assert validate_client({"op": "ack", "id": "a" * MAX_ID_LEN}, 1) == Ack("a" * MAX_ID_LEN)


def test_json_numbers_exclude_booleans_and_strings() -> None:
    assert json_number(3) == 3.0 and isinstance(json_number(3), float)
    assert json_number(2.5) == 2.5
    assert json_number(True) is None and json_number(False) is None
    assert json_number("1") is None and json_number(None) is None


def test_encode_is_compact_utf8_with_one_newline() -> None:
    assert encode({"op": "ping", "id": "é"}) == '{"op":"ping","id":"é"}\n'.encode()


def test_encode_refuses_a_line_over_the_limit_and_nan() -> None:
    fits = {"op": "x", "pad": "a" * (MAX_LINE - 20)}
    assert len(encode(fits)) == MAX_LINE
    with pytest.raises(ProtocolError) as info:
        encode({"op": "x", "pad": "a" * (MAX_LINE - 19)})
    assert info.value.code == "too_long"
    assert info.value.message == f"message of {MAX_LINE + 1} bytes exceeds {MAX_LINE}"
    with pytest.raises(ValueError):
        encode({"op": "x", "n": float("nan")})


@pytest.mark.parametrize(
    ("line", "code", "message"),
    [
        (b"\xff", "bad_utf8", "line is not valid UTF-8"),
        (b"{", "bad_json", "line is not valid JSON"),
        (b'{"op":"a","n":Infinity}', "bad_json", "non-standard number Infinity"),
        (b'{"op":"a","n":-Infinity}', "bad_json", "non-standard number -Infinity"),
        (b"[" * 2000 + b"]" * 2000, "bad_json", "JSON nested too deeply"),
        (b"[]", "bad_message", "message is not a JSON object"),
        (b'"op"', "bad_message", "message is not a JSON object"),
        (b'{"op":1}', "bad_message", "message has no string 'op'"),
        (b"x" * MAX_LINE, "too_long", f"line exceeds {MAX_LINE} bytes"),
    ],
)
def test_decode_refusals(line: bytes, code: str, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode(line)
    assert (info.value.code, info.value.message) == (code, message)


def test_decode_takes_text_and_bytes_up_to_the_limit() -> None:
    assert decode('{"op":"ping"}') == {"op": "ping"}
    line = b'{"op":"p","pad":"' + b"a" * (MAX_LINE - 20) + b'"}'
    assert len(line) == MAX_LINE - 1
    assert decode(line)["op"] == "p"


def test_line_buffer_splits_joins_and_strips_carriage_returns() -> None:
    buf = LineBuffer()
    assert buf.feed(b'{"a"') == [] and buf.pending == 4
    assert buf.feed(b':1}\r\n{"b":2}\n{"c"') == [b'{"a":1}', b'{"b":2}']
    assert buf.pending == 4
    assert buf.feed(b"\n") == [b'{"c"'] and buf.pending == 0
    assert buf.feed(b"\n\n") == [b"", b""]


def test_line_buffer_limits_whole_lines_and_pending_bytes() -> None:
    buf = LineBuffer(limit=8)
    assert buf.feed(b"1234567\n") == [b"1234567"]  # 8 bytes with the newline: allowed
    with pytest.raises(ProtocolError) as info:
        LineBuffer(limit=8).feed(b"12345678\n")
    assert (info.value.code, info.value.message) == ("too_long", "line exceeds 8 bytes")
    partial = LineBuffer(limit=8)
    assert partial.feed(b"1234567") == []
    with pytest.raises(ProtocolError, match="line exceeds 8 bytes"):
        partial.feed(b"8")
    # A long line after a short one is caught too.
    with pytest.raises(ProtocolError):
        LineBuffer(limit=8).feed(b"ok\n123456789\n")


def test_the_default_line_buffer_limit_is_the_protocols() -> None:
    buf = LineBuffer()
    assert buf.feed(b"x" * (MAX_LINE - 1) + b"\n") == [b"x" * (MAX_LINE - 1)]
    with pytest.raises(ProtocolError):
        LineBuffer().feed(b"x" * MAX_LINE)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"op":"error","code":"timeout","message":"no hello in time"}\n', "timeout: no hello in time"),
        (b'{"op":"error","code":"busy"}\nmore', "busy"),
        (b'{"op":"error","code":"busy","message":""}', "busy"),
        (b'{"op":"error","code":"busy","message":7}', "busy"),
        (b'{"op":"welcome"}\n', None),
        (b'{"op":"error","code":5}\n', None),
        (b"SSH-2.0-OpenSSH\r\n", None),
        (b"", None),
    ],
)
def test_server_close_reason_recognises_only_a_natprobe_error_line(data: bytes, reason: str | None) -> None:
    assert server_close_reason(data) == reason


def test_server_close_reason_reads_the_first_line_only() -> None:
    data = b'{"op":"error","code":"a"}\n{"op":"error","code":"b"}\n{"op":"error","code":"c"}\n'
    assert server_close_reason(data) == "a"


def test_line_buffer_strips_only_a_trailing_carriage_return() -> None:
    buf = LineBuffer(limit=16)
    assert buf.feed(b"a\rb\r\n") == [b"a\rb"]
    assert buf.feed(b"sp \t\r\nendX\r\n") == [b"sp \t", b"endX"]
    assert buf.feed(b"x\ny\nzz") == [b"x", b"y"] and buf.pending == 2
    # Limits apply per line, counted from each line's own start.
    assert LineBuffer(limit=4).feed(b"abc\nabc\nabc\n") == [b"abc"] * 3
    assert LineBuffer(limit=8).feed(b"1234\n1234\n1234567\n") == [b"1234", b"1234", b"1234567"]
