"""Server messages read into types: required fields, and tolerance of what
this client does not know."""

from __future__ import annotations

from typing import Any

import pytest

from probe.core.protocol import MAX_ID_LEN
from probe.core.server_messages import (
    BeatAck,
    Pong,
    Push,
    Pushed,
    PushUnacked,
    UdpProbeReply,
    UdpSeen,
    read_server,
)


@pytest.mark.parametrize(
    ("msg", "typed"),
    [
        ({"op": "push", "id": "b1.0", "idle_s": 12.5}, Push("b1.0", 12.5)),
        ({"op": "push", "id": "b1.0", "idle_s": True}, Push("b1.0", None)),
        (
            {"op": "pushed", "id": "r4", "sent": True, "idle_s": 3, "session": "s"},
            Pushed("r4", True, 3.0, "s"),
        ),
        (
            {"op": "pushed", "id": "r5", "sent": False, "reason": "unknown_session"},
            Pushed("r5", False, None, reason="unknown_session"),
        ),
        (
            {"op": "pushed", "id": "r6", "sent": 1, "probe": "ab", "copies": 2, "idle_s": 1.5},
            Pushed("r6", False, 1.5, probe="ab", copies=2),
        ),
        ({"op": "push_unacked", "id": "r4", "session": "s", "unacked": 1}, PushUnacked("r4", "s")),
        ({"op": "push_unacked", "session": "s"}, PushUnacked("", "s")),
        (
            {"op": "push_unacked", "id": "r4", "session": "s", "unacked": 1, "rto_s": 0.4, "retransmit_in_s": 0.1},
            PushUnacked("r4", "s", 0.1, 0.4),
        ),
        ({"op": "push_unacked", "id": "r4", "session": "s", "ended": "reset"}, PushUnacked("r4", "s", ended="reset")),
        ({"op": "pong"}, Pong(None, None)),
        ({"op": "pong", "id": "after", "observed": "198.18.0.9:1"}, Pong("after", "198.18.0.9:1")),
        ({"op": "beat_ack", "id": "h1"}, BeatAck("h1")),
        ({"op": "udp_probe", "id": "r1", "probe": "00ff"}, UdpProbeReply("r1", "00ff", None)),
        ({"op": "udp_probe", "id": "r1", "probe": None, "reason": "no_udp"}, UdpProbeReply("r1", None, "no_udp")),
        ({"op": "udp_seen", "probe": "00ff", "observed": "198.18.0.9:2"}, UdpSeen("00ff", "198.18.0.9:2")),
        ({"op": "udp_seen", "probe": "00ff", "observed": 7}, UdpSeen("00ff", None)),
    ],
)
def test_known_messages_are_typed(msg: dict[str, Any], typed: object) -> None:
    assert read_server(msg) == typed


@pytest.mark.parametrize(
    "msg",
    [
        {"op": "welcome_v2"},
        {"op": "push", "idle_s": 1},
        {"op": "push", "id": 5},
        {"op": "push", "id": "x" * (MAX_ID_LEN + 1)},
        {"op": "pushed", "sent": True},
        {"op": "push_unacked", "id": "r1"},
        {"op": "beat_ack"},
        {"op": "udp_probe", "probe": "00"},
        {"op": "udp_seen", "observed": "h:1"},
        {},
    ],
)
def test_unknown_or_incomplete_messages_read_as_none(msg: dict[str, Any]) -> None:
    assert read_server(msg) is None


def test_a_long_optional_field_is_dropped_not_kept() -> None:
    assert read_server({"op": "pong", "id": "a", "observed": "o" * (MAX_ID_LEN + 1)}) == Pong("a", None)
    exact = "x" * MAX_ID_LEN
    assert read_server({"op": "beat_ack", "id": exact}) == BeatAck(exact)
