"""UDP discover and check through a userspace UDP NAT on loopback, in real time.

The NAT keeps bindings T1 = 3 s until they are streams, then T2 = 6 s (above
the 2.5 s the stream state needs to be reached), as conntrack does with its
UDP timers; with ``inbound_refresh`` off, only the client's packets count.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from probe.core.exporter_config import JobSpec
from probe.core.planner import PlannerConfig
from probe.core.targets import Target
from probe.net.dial import Endpoint
from probe.net.server import ProbeServer
from probe.net.ws_server import listen_ws
from probe.run.check_udp import UdpCheckOptions, run_check_udp
from probe.run.discover_udp import UdpDiscoverOptions, UdpDiscoverRun
from probe.run.exporter import run_job
from probe.testing import ExpiringUdpNat
from tests.conftest import scaled, validate_output
from tests.run.helpers import Served, expired, probe_server

T1 = scaled(3.0)
T2 = scaled(6.0)
NatFactory = Callable[..., ExpiringUdpNat]


def through_nat(
    expiring_udp_nat: NatFactory, served: Served, inbound_refresh: bool = True
) -> tuple[ExpiringUdpNat, Target, Target]:
    """The NAT (bindings live T1, T2 once streams), udp:// through it, tcp:// straight to the server."""
    assert served.udp is not None
    nat = expiring_udp_nat(upstream=served.udp, idle_timeout=T1, stream_timeout=T2, inbound_refresh=inbound_refresh)
    return nat, Target("udp", nat.host, nat.port), Target("tcp", *served.tcp)


async def _discover(expiring_udp_nat: NatFactory, inbound_refresh: bool) -> tuple[dict[str, Any], int]:
    async with probe_server(udp=True) as served:
        nat, target, control = through_nat(expiring_udp_nat, served, inbound_refresh)
        options = UdpDiscoverOptions(target, Endpoint(control), PlannerConfig())
        result = validate_output((await UdpDiscoverRun(options).run()).to_json())
        return result, expired(nat)


@pytest.mark.parametrize("inbound_refresh", [True, False])
def test_each_state_has_its_own_bracket_and_inbound_refresh_is_told(
    expiring_udp_nat: NatFactory, inbound_refresh: bool
) -> None:
    result, forgotten = asyncio.run(_discover(expiring_udp_nat, inbound_refresh))
    states = result["states"]
    assert set(states) == {"unreplied", "replied", "stream"}
    for name, timer in (("unreplied", T1), ("replied", T1), ("stream", T2)):
        state = states[name]
        assert state["lower_s"] <= timer <= state["upper_s"], (name, state)
        assert state["upper_s"] - state["lower_s"] <= max(0.02 * timer, 0.5) + 1e-3
        assert state["failure_mode"] == "silent_drop" and state["reason"] == "resolved"
    assert result["shortest_state"] in ("unreplied", "replied")
    shortest = states[result["shortest_state"]]
    assert (result["lower_s"], result["upper_s"]) == (shortest["lower_s"], shortest["upper_s"])
    assert result["transport"] == "udp" and result["evidence"] == "server_push"
    assert result["inbound_refresh"] is inbound_refresh
    # Each binding has its own public port here (a new socket per binding).
    assert result["nat"]["detected"] is True and result["nat"]["port_preserved"] is False
    assert forgotten >= 3
    # Every probe was tested once, on its own binding.
    tests = [(p["state"], p["conn"]) for p in result["probes"]]
    assert len(tests) == len(set(tests))
    # The answer comes shortly after the longest timer: the stream state
    # starts its idle 2.5 s in, then the same goal as TCP (1.1 T + 2 s + grace).
    assert result["wall_s"] <= 2.5 + 1.10 * T2 + 2.0 + result["grace_s"] + scaled(0.5)
    # Sending again on a forgotten binding makes a new one, on a new port here.
    after = result["after_expiry"]
    assert after["outcome"] == "revived" and after["port_changed"] is True
    recommendations = result["recommendations"]
    assert recommendations["state"] == result["shortest_state"]
    assert recommendations["interval_s"] == pytest.approx(0.8 * shortest["lower_s"], abs=0.1)
    # The design probes: the client's datagrams refresh this NAT's bindings,
    # one-way or answered, past every state's timer; one-way is the cheaper.
    designs = result["designs"]
    assert set(designs) == {"client_only", "request_response"}
    for name, design in designs.items():
        assert design["kept"] is True, (name, design)
        assert design["age_s"] > max(s["upper_s"] for s in states.values())
    assert recommendations["design"] == "client_only"
    assert result["middlebox"] is None and result["connections"]["designs"] == 2


async def _check(expiring_udp_nat: NatFactory, idle: float, state: str) -> dict[str, Any]:
    async with probe_server(udp=True) as served:
        _, target, control = through_nat(expiring_udp_nat, served)
        options = UdpCheckOptions(target, Endpoint(control), idle, state)
        return validate_output((await run_check_udp(options)).to_json())


@pytest.mark.parametrize(
    ("state", "idle", "passed"),
    [("replied", T1 - 0.7, True), ("replied", T1 + 0.7, False), ("unreplied", T1 + 0.7, False),
     ("stream", T1 + 0.7, True)],
)  # fmt: skip
def test_check_passes_below_the_states_timer_and_fails_above(
    expiring_udp_nat: NatFactory, state: str, idle: float, passed: bool
) -> None:
    result = asyncio.run(_check(expiring_udp_nat, idle, state))
    assert result["passed"] is passed and result["udp_state"] == state
    assert result["push_copies"] == 3
    assert result["push_idle_s"] == pytest.approx(idle, abs=0.3)
    assert result["failure_mode"] == (None if passed else "silent_drop")


def test_the_exporter_runs_udp_probes_with_their_state_and_control(expiring_udp_nat: NatFactory) -> None:
    async def body() -> tuple[dict[str, Any], dict[str, Any]]:
        async with probe_server(udp=True) as served:
            _, target, control = through_nat(expiring_udp_nat, served)
            common = {"control": str(control), "timeout_s": 10.0}
            check = JobSpec("w", str(target), "check", 60.0, {"idle": 0.5, "udp_state": "unreplied"}, **common)
            find = JobSpec("f", str(target), "discover", 60.0, {"max_idle": 1.0}, **common)
            return (await run_job(check)).to_json(), (await run_job(find)).to_json()

    check, found = asyncio.run(body())
    assert validate_output(check)["udp_state"] == "unreplied" and check["passed"] is True
    assert validate_output(found)["transport"] == "udp" and found["reason"] == "max_idle"
    assert set(found["states"]) == {"unreplied", "replied", "stream"}


def test_a_websocket_control_connection_drives_udp_probes_too() -> None:
    async def body() -> dict[str, Any]:
        server = ProbeServer()
        _, ws_port = await listen_ws(server, "127.0.0.1", 0)
        _, udp_port = await server.listen_udp("127.0.0.1", 0)
        try:
            options = UdpCheckOptions(
                Target("udp", "127.0.0.1", udp_port),
                Endpoint(Target("ws", "127.0.0.1", ws_port, "/")),
                0.3,
                "unreplied",
            )
            return validate_output((await run_check_udp(options)).to_json())
        finally:
            await server.shutdown()

    result = asyncio.run(body())
    assert result["passed"] is True and result["control"].startswith("ws://127.0.0.1:")
    assert result["push_copies"] == 3
