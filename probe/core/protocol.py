"""The natprobe wire protocol, without I/O: framing, encoding and validation.

Newline-delimited UTF-8 JSON objects, one per line, each line at most
``MAX_LINE`` bytes including the newline. See docs/protocol.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

VERSION = 1
MAX_LINE = 4096
MAX_ID_LEN = 128

#: Ops a client may send, and ops a server may send.
CLIENT_OPS = frozenset({"hello", "push_after", "push_now", "ack", "ping", "beat", "release", "udp_open", "tick"})
SERVER_OPS = frozenset(
    {"welcome", "push", "pushed", "pong", "beat_ack", "push_unacked", "error", "udp_probe", "udp_seen", "tick"}
)
#: A design connection's own traffic (hello's ``keepalive_s`` and
#: ``tick_every_s``): how fast and how slow it may be asked for.
MAX_KEEPALIVE_S = 7200
MIN_TICK_S = 0.05
MAX_TICK_S = 7200.0
#: What a server of this version knows beyond version 1's first ops, told in
#: every welcome: a client leaves out what an older server would refuse.
FEATURES = ("tick", "keepalive_s", "tick_every_s")
#: A UDP probe's id on the control connection: its 16 bytes in hex.
UDP_PROBE_LEN = 32
#: Copies of one UDP push a client may ask for (loss is told from expiry by
#: sending more than one).
MAX_UDP_COPIES = 3


class ProtocolError(ValueError):
    """A message that breaks the protocol; ``code`` goes into the error reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def encode(message: dict[str, Any]) -> bytes:
    """One message as a line of compact JSON."""
    line = json.dumps(message, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    data = line.encode("utf-8") + b"\n"
    if len(data) > MAX_LINE:
        raise ProtocolError("too_long", f"message of {len(data)} bytes exceeds {MAX_LINE}")
    return data


def _reject_constant(name: str) -> float:
    # json accepts NaN and Infinity by default; the protocol does not.
    raise ProtocolError("bad_json", f"non-standard number {name}")


def decode(line: bytes | str) -> dict[str, Any]:
    """Parse one line (without its newline) into a message object.

    Only structure is checked here (UTF-8, JSON, an object with a string
    ``op``); a client's messages are then checked field by field by
    :func:`validate_client`. A client reads the server's messages into
    types with :func:`probe.core.server_messages.read_server` (and the
    welcome in probe/net/client.py's ``hello_exchange``).
    """
    if isinstance(line, bytes):
        if len(line) >= MAX_LINE:
            raise ProtocolError("too_long", f"line exceeds {MAX_LINE} bytes")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("bad_utf8", "line is not valid UTF-8") from None
    else:
        text = line
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except ProtocolError:
        raise  # a ValueError too: keep its own message
    except RecursionError:
        raise ProtocolError("bad_json", "JSON nested too deeply") from None
    except ValueError:
        raise ProtocolError("bad_json", "line is not valid JSON") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_message", "message is not a JSON object")
    op = obj.get("op")
    if not isinstance(op, str):
        raise ProtocolError("bad_message", "message has no string 'op'")
    return obj


def _id(msg: dict[str, Any], field: str = "id") -> str:
    value = msg.get(field)
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LEN:
        raise ProtocolError("bad_id", f"'{field}' must be a non-empty string of at most {MAX_ID_LEN} characters")
    return value


def json_number(value: Any) -> float | None:
    """A JSON number as float, or None; bool is an int subclass but not a number here."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _number(msg: dict[str, Any], field: str) -> float:
    number = json_number(msg.get(field))
    if number is None:
        raise ProtocolError("bad_idle", f"'{field}' must be a number")
    if not math.isfinite(number) or number < 0:
        raise ProtocolError("bad_idle", f"'{field}' must be a finite number >= 0")
    return number


@dataclass(frozen=True)
class Hello:
    version: int
    token: str | None
    #: The session id of the control connection whose run this connection
    #: joins; the server ends the run's connections when that one ends.
    run: str | None = None
    #: A design connection: the server's kernel keepalive on this session
    #: (idle and interval, whole seconds), and a one-way ``tick`` every so often.
    keepalive_s: int | None = None
    tick_every_s: float | None = None


@dataclass(frozen=True)
class PushAfter:
    id: str
    idle_s: float


@dataclass(frozen=True)
class PushNow:
    id: str
    session: str
    #: Set instead of ``session``: push on this UDP probe (its id in hex).
    probe: str | None = None
    copies: int = MAX_UDP_COPIES


@dataclass(frozen=True)
class Ack:
    id: str


@dataclass(frozen=True)
class Ping:
    id: str | None


@dataclass(frozen=True)
class Beat:
    id: str


@dataclass(frozen=True)
class Release:
    """The run is done with one of its test connections (or UDP probes): free it now."""

    session: str
    probe: str | None = None


@dataclass(frozen=True)
class UdpOpen:
    """Create a UDP probe owned by this (control) session."""

    id: str


@dataclass(frozen=True)
class Tick:
    """One-way data from the client (a design connection's traffic): not answered."""


ClientMessage = Hello | PushAfter | PushNow | Ack | Ping | Beat | Release | UdpOpen | Tick


def _probe_id(msg: dict[str, Any]) -> str:
    value = msg.get("probe")
    if not isinstance(value, str) or len(value) != UDP_PROBE_LEN or value.strip("0123456789abcdef"):
        raise ProtocolError("bad_probe", f"'probe' must be {UDP_PROBE_LEN} lowercase hex digits")
    return value


def _keepalive(msg: dict[str, Any]) -> int | None:
    value = msg.get("keepalive_s")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_KEEPALIVE_S:
        raise ProtocolError("bad_keepalive", f"'keepalive_s' must be an integer from 1 to {MAX_KEEPALIVE_S}")
    return value


def _tick_every(msg: dict[str, Any]) -> float | None:
    if msg.get("tick_every_s") is None:
        return None
    every = json_number(msg.get("tick_every_s"))
    if every is None or not MIN_TICK_S <= every <= MAX_TICK_S:
        raise ProtocolError("bad_tick", f"'tick_every_s' must be a number from {MIN_TICK_S:g} to {MAX_TICK_S:g}")
    return every


def validate_client(msg: dict[str, Any], max_idle_s: float) -> ClientMessage:
    """Check a decoded client message's fields and return it typed."""
    op = msg["op"]
    if op == "hello":
        version = msg.get("v")
        if isinstance(version, bool) or version != VERSION:
            raise ProtocolError(
                "bad_version", f"unsupported protocol version {version!r}; this server speaks {VERSION}"
            )
        token = msg.get("token")
        if token is not None and not isinstance(token, str):
            raise ProtocolError("bad_token", "'token' must be a string")
        run = msg.get("run")
        if run is not None:
            run = _id(msg, "run")
        return Hello(VERSION, token, run, _keepalive(msg), _tick_every(msg))
    if op == "push_after":
        idle = _number(msg, "idle_s")
        if idle > max_idle_s:
            raise ProtocolError("bad_idle", f"idle_s {idle:g} exceeds this server's limit of {max_idle_s:g}")
        return PushAfter(_id(msg), idle)
    if op == "push_now":
        if "probe" not in msg:
            return PushNow(_id(msg), _id(msg, "session"))
        copies = msg.get("copies", MAX_UDP_COPIES)
        if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= MAX_UDP_COPIES:
            raise ProtocolError("bad_copies", f"'copies' must be an integer from 1 to {MAX_UDP_COPIES}")
        return PushNow(_id(msg), "", _probe_id(msg), copies)
    if op == "ack":
        return Ack(_id(msg))
    if op == "ping":
        ping_id = msg.get("id")
        return Ping(ping_id if isinstance(ping_id, str) and len(ping_id) <= MAX_ID_LEN else None)
    if op == "beat":
        return Beat(_id(msg))
    if op == "release":
        if "probe" in msg:
            return Release("", _probe_id(msg))
        return Release(_id(msg, "session"))
    if op == "udp_open":
        return UdpOpen(_id(msg))
    if op == "tick":
        return Tick()
    raise ProtocolError("unknown_op", f"unknown op {op[:40]!r}")


#: Close reasons of a natprobe WebSocket server start with this.
REASON_PREFIX = "natprobe "


def server_close_reason(data: bytes) -> str | None:
    """``code: message`` from a natprobe server's ``error`` line at the start
    of ``data`` (what a plain TCP client received), or None if it is not one."""
    line = data.split(b"\n", 1)[0]
    try:
        msg = decode(line)
    except ProtocolError:
        return None
    if msg["op"] != "error" or not isinstance(msg.get("code"), str):
        return None
    message = msg.get("message")
    return f"{msg['code']}: {message}" if isinstance(message, str) and message else msg["code"]


class LineBuffer:
    """Splits a byte stream into lines, refusing any line over ``MAX_LINE``.

    The server holds one per idle session, thousands at once: no instance
    dict, and between lines the buffer is the one shared empty ``b""``.
    """

    __slots__ = ("_buf", "_limit")

    def __init__(self, limit: int = MAX_LINE) -> None:
        self._buf = b""
        self._limit = limit

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the complete lines (without newline) now available."""
        buf = self._buf + bytes(data)
        lines: list[bytes] = []
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            if end - start + 1 > self._limit:
                raise ProtocolError("too_long", f"line exceeds {self._limit} bytes")
            lines.append(buf[start:end].rstrip(b"\r"))
            start = end + 1
        self._buf = buf[start:]
        if len(self._buf) >= self._limit:
            raise ProtocolError("too_long", f"line exceeds {self._limit} bytes")
        return lines

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line."""
        return len(self._buf)
