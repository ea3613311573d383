"""``demo --hung-server`` on real loopback sockets: a hung application's kernel
answers keepalive probes; only a heartbeat notices it."""

from __future__ import annotations

import asyncio

import pytest

from probe.core.heartbeat import HeartbeatConfig
from probe.core.model import to_json
from probe.core.targets import Scheme, Target
from probe.net.dial import Endpoint
from probe.net.server import ProbeServer
from probe.run.check import CheckOptions, run_check
from probe.run.demo import HUNG_KEEPALIVE, run_hung_server
from tests.conftest import validate_output


def test_keepalive_never_notices_the_hung_server_and_the_heartbeat_does() -> None:
    wait = 5.0  # beyond the 4 s keepalive takes to end a connection to a dead host
    result = asyncio.run(run_hung_server(wait, interval_s=1.0, timeout_s=2.0))
    data = validate_output(to_json(result))
    keepalive, heartbeat = result.hung_server.keepalive, result.hung_server.heartbeat
    assert keepalive.noticed_s is None and keepalive.waited_s == pytest.approx(wait, abs=0.3)
    # The kernel really held the keepalive the demo asked for.
    kernel = keepalive.keepalive_in_force
    assert (kernel.enabled, kernel.idle_s, kernel.interval_s, kernel.count) == (True, 1, 1, 3)
    assert keepalive.dead_peer_s == 4.0 < keepalive.waited_s
    # The first beat goes at 1 s and is overdue 2 s later.
    assert heartbeat.noticed_s == pytest.approx(3.0, abs=0.5)
    assert heartbeat.sent >= 2 and heartbeat.answered == 0
    assert data["hung_server"]["keepalive"]["noticed_s"] is None


def test_the_same_heartbeat_on_a_server_that_does_not_hang_is_answered() -> None:
    # The control: what the demo's heartbeat notices is the hang, not the heartbeat.
    async def body() -> tuple[bool, int, int, int, str | None, bool]:
        server = ProbeServer()
        try:
            host, port = await server.listen_tcp("127.0.0.1", 0)
            reach = Endpoint(Target(Scheme.TCP, host, port))
            beat = HeartbeatConfig(0.5, kind="message", timeout_s=1.0)
            by_heartbeat, by_keepalive = await asyncio.gather(
                run_check(CheckOptions(reach, 2.5, grace_s=1.0, heartbeat=beat, after_expiry=False)),
                run_check(CheckOptions(reach, 2.5, HUNG_KEEPALIVE, grace_s=1.0, after_expiry=False)),
            )
        finally:
            await server.shutdown()
        assert by_heartbeat.heartbeat is not None
        stats = by_heartbeat.heartbeat.stats
        check = by_heartbeat
        return check.passed, stats.sent, stats.answered, stats.missed, check.failure_mode, by_keepalive.passed

    passed, sent, answered, missed, mode, keepalive_passed = asyncio.run(body())
    # The push ends the check: the last beat may still be on its way back.
    assert passed and mode is None and sent >= 3 and answered >= sent - 1 and missed == 0
    assert keepalive_passed
