"""discover through ``natprobe emulate``'s middlebox, in real time on loopback.

Timeline: the emulator forgets flows idle T = 2.5 s (scaled). The goal from
docs/discovery.md applies: bracket contains T, at most max(2% T, 0.5 s) wide,
within 1.10 T + 2 s plus the grace period.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from probe.core.planner import PlannerConfig
from probe.core.targets import Target
from probe.net.dial import Endpoint
from probe.net.server import ServerConfig
from probe.run.discover import DiscoverOptions, DiscoverRun
from probe.testing import ExpiringNat
from tests.conftest import scaled, validate_output
from tests.run.helpers import expired, probe_server

T = scaled(2.5)
NatFactory = Callable[..., ExpiringNat]


async def _discover(
    expiring_nat: NatFactory, mode: str, config: PlannerConfig | None = None
) -> tuple[dict[str, object], int]:
    async with probe_server() as served:
        nat = expiring_nat(upstream=served.tcp, idle_timeout=T, mode=mode)
        runner = DiscoverRun(DiscoverOptions(Endpoint(Target("tcp", nat.host, nat.port)), config or PlannerConfig()))
        result = (await runner.run()).to_json()
        return result, expired(nat)


@pytest.mark.parametrize(("mode", "failure_mode"), [("drop", "silent_drop"), ("reset", "reset"), ("close", "closed")])
def test_bracket_contains_the_emulated_timeout(expiring_nat: NatFactory, mode: str, failure_mode: str) -> None:
    result, forgotten = asyncio.run(_discover(expiring_nat, mode))
    lower, upper = result["lower_s"], result["upper_s"]
    assert isinstance(lower, float) and isinstance(upper, float)
    assert lower <= T <= upper
    assert upper - lower <= max(0.02 * T, 0.5) + 1e-3
    assert result["failure_mode"] == failure_mode
    assert result["consistent"] is True
    assert forgotten >= 1
    grace = result["grace_s"]
    assert isinstance(grace, float)
    assert result["wall_s"] <= 1.10 * T + 2.0 + grace + scaled(0.3)


def test_expect_min_stops_early_when_the_path_is_shorter(expiring_nat: NatFactory) -> None:
    result, _ = asyncio.run(_discover(expiring_nat, "drop", PlannerConfig(expect_min_s=60.0)))
    assert result["reason"] == "expect_min"
    upper = result["upper_s"]
    assert isinstance(upper, float) and upper < 60.0


def test_a_server_limit_below_the_pool_makes_discovery_smaller_not_failed(expiring_nat: NatFactory) -> None:
    # 20 per address: the control connection, the quiet one and the one kept
    # for the after-expiry test leave 17.
    async def body() -> dict[str, Any]:
        async with probe_server(ServerConfig(max_per_ip=20)) as served:
            nat = expiring_nat(upstream=served.tcp, idle_timeout=T)
            runner = DiscoverRun(DiscoverOptions(Endpoint(Target("tcp", nat.host, nat.port)), PlannerConfig()))
            return validate_output((await runner.run()).to_json())

    result = asyncio.run(body())
    connections = result["connections"]
    assert connections["server_limits"] == {
        "max_sessions": 10000, "sessions_free": 9999, "max_per_ip": 20, "per_ip_free": 19,
    }  # fmt: skip
    # 17, or fewer if connections the emulator forgot still held places
    # (the server then says busy and the pool shrinks again).
    assert connections["limited_by_server"] is True and 2 <= connections["pool"] <= 17
    assert connections["asked"] == 31 and connections["max_open"] <= 20
    assert result["lower_s"] <= T <= result["upper_s"]


def test_two_discoveries_from_one_address_share_the_servers_limit(expiring_nat: NatFactory) -> None:
    # 30 per address. The second starts once the first holds 20 connections,
    # so its welcome says at most 8 are left; the first, still opening, then
    # meets "busy" and shrinks its pool too. Both answer.
    async def body() -> list[dict[str, Any]]:
        async with probe_server(ServerConfig(max_per_ip=30)) as served:
            nat = expiring_nat(upstream=served.tcp, idle_timeout=T)
            target = Target("tcp", nat.host, nat.port)
            first_run = DiscoverRun(DiscoverOptions(Endpoint(target), PlannerConfig()))
            first = asyncio.create_task(first_run.run())
            for _ in range(1000):  # bounded: the first opens 20 within about a second
                if first_run.started is not None and len(first_run.planner.conns) >= 20:
                    break
                await asyncio.sleep(0.01)
            second = await DiscoverRun(DiscoverOptions(Endpoint(target), PlannerConfig())).run()
            return [validate_output(r.to_json()) for r in (await first, second)]

    first, second = asyncio.run(body())
    for result in (first, second):
        assert result["lower_s"] <= T <= result["upper_s"]
        assert result["after_expiry"] is not None
    assert second["connections"]["limited_by_server"] is True and second["connections"]["pool"] <= 8
    # Each within the limit; the second within what its welcome said was left
    # (at most 8, besides its control connection).
    assert first["connections"]["max_open"] <= 30 and second["connections"]["max_open"] <= 9
