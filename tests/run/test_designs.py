"""The design connections on real sockets: through ``natprobe emulate``'s
middlebox (a userspace relay, so it terminates TCP), in real time on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from probe.core import server_session
from probe.core.planner import PlannerConfig
from probe.core.targets import Target
from probe.net.dial import Endpoint
from probe.net.ws_server import listen_ws
from probe.run.discover import DiscoverOptions, DiscoverRun
from probe.testing import ExpiringNat
from tests.conftest import scaled, validate_output
from tests.run.helpers import probe_server

T = scaled(2.5)
NatFactory = Callable[..., ExpiringNat]


async def _discover(expiring_nat: NatFactory, scheme: str = "tcp", **options: Any) -> dict[str, Any]:
    async with probe_server() as served:
        upstream = served.tcp if scheme == "tcp" else await listen_ws(served.server, "127.0.0.1", 0)
        nat = expiring_nat(upstream=upstream, idle_timeout=T, mode="drop")
        target = Target(scheme, nat.host, nat.port, "/natprobe" if scheme == "ws" else "/")
        runner = DiscoverRun(DiscoverOptions(Endpoint(target), PlannerConfig(), **options))
        result = (await runner.run()).to_json()
        return validate_output(result)


def test_through_a_relay_data_keeps_the_flow_and_kernel_keepalive_does_not(expiring_nat: NatFactory) -> None:
    result = asyncio.run(_discover(expiring_nat))
    designs = result["designs"]
    assert set(designs) == {"tcp_keepalive", "server_keepalive", "client_data", "server_data", "heartbeat"}
    assert designs["tcp_keepalive"]["kept"] is False and designs["server_keepalive"]["kept"] is False
    for name in ("client_data", "server_data", "heartbeat"):
        assert designs[name]["kept"] is True, designs[name]
        # Pushed once idle past the bound, apart from its own traffic.
        assert designs[name]["age_s"] > result["upper_s"]
    # The bracket is shorter than 4 s: data came four times within it.
    assert designs["client_data"]["traffic_every_s"] == pytest.approx(result["upper_s"] / 4, abs=0.01)
    assert result["middlebox"]["kind"] == "tcp_terminating"
    assert result["recommendations"]["design"] == "client_data"
    assert result["connections"]["designs"] == 5
    assert result["total_s"] <= result["wall_s"] + 3.0
    assert "confirmed" not in designs["client_data"]


def test_over_websocket_the_ping_is_tried_too(expiring_nat: NatFactory) -> None:
    result = asyncio.run(_discover(expiring_nat, "ws"))
    designs = result["designs"]
    assert designs["ws_ping"]["kept"] is True and designs["tcp_keepalive"]["kept"] is False
    assert result["connections"]["designs"] == 6


def test_confirm_holds_each_kept_design_at_the_recommended_interval(expiring_nat: NatFactory) -> None:
    result = asyncio.run(_discover(expiring_nat, confirm=True))
    designs = result["designs"]
    for name in ("client_data", "server_data", "heartbeat"):
        assert designs[name]["confirmed"] is True, designs[name]
    # A design that did not keep the flow is not confirmed, nor said to be.
    assert "confirmed" not in designs["tcp_keepalive"]
    # 1.5 x upper_s at the recommended interval, after the bracket.
    assert result["total_s"] >= result["wall_s"] + 1.5 * result["upper_s"]


def test_a_server_too_old_for_a_design_is_named_in_its_reason(
    expiring_nat: NatFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server of before the design connections: its welcome names no features.
    monkeypatch.setattr(server_session, "FEATURES", ())
    result = asyncio.run(_discover(expiring_nat))
    designs = result["designs"]
    for name in ("server_keepalive", "client_data", "server_data"):
        assert designs[name]["kept"] is None and designs[name]["reason"] == "old_server", designs[name]
        assert "too old" in designs[name]["detail"]
    # What needs nothing new of the server is still tried.
    assert designs["tcp_keepalive"]["kept"] is False and designs["heartbeat"]["kept"] is True
    assert result["recommendations"]["design"] == "heartbeat"
    assert result["connections"]["designs"] == 2
