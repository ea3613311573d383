"""Reading the hung-server demo's two checks."""

from __future__ import annotations

import pytest

from probe.core.heartbeat import HeartbeatReport, HeartbeatSettings, HeartbeatStats
from probe.core.hung import hung_server, noticed_s
from probe.core.keepalive import KeepaliveInForce, KeepaliveSettings, dead_peer_s
from tests.factories import check_result

KERNEL = KeepaliveInForce(True, 1, 1, 3, 0.0)
REPORT = HeartbeatReport(HeartbeatSettings(1.0, "message", "fixed", 2.0), HeartbeatStats(2, 0, 1))


@pytest.mark.parametrize(
    ("mode", "noticed"),
    [
        ("heartbeat_timeout", 3.0),
        ("timeout", 3.0),
        ("reset", 3.0),
        ("closed", 3.0),
        ("silent_drop", None),
        (None, None),
    ],
)
def test_only_an_end_or_an_overdue_answer_is_noticing(mode: str | None, noticed: float | None) -> None:
    assert noticed_s(check_result(passed=mode is None, failure_mode=mode, alive_s=3.0)) == noticed


def test_the_demo_result_from_its_two_checks() -> None:
    by_keepalive = check_result(passed=False, failure_mode="silent_drop", alive_s=8.0, keepalive_in_force=KERNEL)
    by_heartbeat = check_result(passed=False, failure_mode="heartbeat_timeout", alive_s=3.002, heartbeat=REPORT)
    result = hung_server(by_keepalive, by_heartbeat, "127.0.0.1:1", 8.0042)
    keepalive, heartbeat = result.hung_server.keepalive, result.hung_server.heartbeat
    assert (keepalive.noticed_s, keepalive.waited_s, keepalive.dead_peer_s) == (None, 8.0, 4.0)
    assert keepalive.keepalive_in_force is KERNEL
    assert (heartbeat.noticed_s, heartbeat.interval_s, heartbeat.timeout_s) == (3.002, 1.0, 2.0)
    assert (heartbeat.sent, heartbeat.answered) == (2, 0)
    assert (result.server, result.wall_s, result.schema) == ("127.0.0.1:1", 8.004, "natprobe.hung-server/1")
    # A kernel that reads back no keepalive values cannot say when a dead peer ends.
    unread = hung_server(check_result(keepalive_in_force=KeepaliveInForce(True)), by_heartbeat, "h:1", 1.0)
    assert unread.hung_server.keepalive.dead_peer_s is None
    with pytest.raises(ValueError, match="without a heartbeat"):
        hung_server(by_keepalive, check_result(heartbeat=None), "h:1", 1.0)


def test_a_dead_peer_is_noticed_after_the_idle_and_every_probe() -> None:
    assert dead_peer_s(60, 10, 3) == 90.0
    assert dead_peer_s(None, 10, 3) is None and dead_peer_s(60, None, 3) is None and dead_peer_s(60, 10, None) is None
    assert KeepaliveSettings(1.5, 0.5, 4).dead_peer_s == 3.5 and KeepaliveSettings().dead_peer_s is None
