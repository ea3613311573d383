"""What a natprobe server says to a client, typed (docs/protocol.md).

A client reads each server message once, here, into one of these types;
a field of the wrong type is as good as absent (a server of a later
version may add ops and fields, so an unknown op reads as None and the
reader skips it). ``error`` never gets this far: the connection's reader
turns it into the run's error (net/client.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probe.core.protocol import MAX_ID_LEN, json_number


@dataclass(frozen=True)
class Push:
    """The server pushed on this connection after ``idle_s`` of idle."""

    id: str
    idle_s: float | None


@dataclass(frozen=True)
class Pushed:
    """The answer to ``push_now``: whether the push went out, and after how much idle."""

    id: str
    sent: bool
    idle_s: float | None
    session: str | None = None
    probe: str | None = None
    #: Why not sent; for a UDP push, how many copies went out.
    reason: str | None = None
    copies: int | None = None


@dataclass(frozen=True)
class PushUnacked:
    """A push on ``session`` the client's TCP never acknowledged, and when
    the server's TCP sends it again (where the server can tell)."""

    id: str
    session: str
    retransmit_in_s: float | None = None
    rto_s: float | None = None
    #: The server's side of the connection ended ("reset", "timeout"): the
    #: push is never sent again.
    ended: str | None = None


@dataclass(frozen=True)
class Pong:
    id: str | None
    observed: str | None


@dataclass(frozen=True)
class BeatAck:
    id: str


@dataclass(frozen=True)
class UdpProbeReply:
    """The answer to ``udp_open``: the probe's id in hex, or None and why."""

    id: str
    probe: str | None
    reason: str | None


@dataclass(frozen=True)
class UdpSeen:
    """A datagram of the probe arrived, from ``observed``."""

    probe: str
    observed: str | None


ServerMessage = Push | Pushed | PushUnacked | Pong | BeatAck | UdpProbeReply | UdpSeen
#: Messages that answer one request, by the request's id.
Reply = Pushed | Pong | BeatAck | UdpProbeReply


def _text(msg: dict[str, Any], field: str) -> str | None:
    value = msg.get(field)
    return value if isinstance(value, str) and len(value) <= MAX_ID_LEN else None


def read_server(msg: dict[str, Any]) -> ServerMessage | None:
    """The typed form of a decoded server message; None for one this client
    does not use or whose required fields are missing."""
    op, ident = msg.get("op"), _text(msg, "id")
    if op == "push" and ident is not None:
        return Push(ident, json_number(msg.get("idle_s")))
    if op == "pushed" and ident is not None:
        copies = json_number(msg.get("copies"))
        return Pushed(
            ident, msg.get("sent") is True, json_number(msg.get("idle_s")), _text(msg, "session"),
            _text(msg, "probe"), _text(msg, "reason"), None if copies is None else int(copies),
        )  # fmt: skip
    if op == "push_unacked" and (session := _text(msg, "session")) is not None:
        return PushUnacked(
            ident or "", session, json_number(msg.get("retransmit_in_s")), json_number(msg.get("rto_s")),
            _text(msg, "ended"),
        )  # fmt: skip
    if op == "pong":
        return Pong(ident, _text(msg, "observed"))
    if op == "beat_ack" and ident is not None:
        return BeatAck(ident)
    if op == "udp_probe" and ident is not None:
        return UdpProbeReply(ident, _text(msg, "probe"), _text(msg, "reason"))
    if op == "udp_seen" and (probe := _text(msg, "probe")) is not None:
        return UdpSeen(probe, _text(msg, "observed"))
    return None
