"""The events of real runs (what --ndjson prints) against natprobe.events/1:
a TCP discovery through the emulated NAT and a UDP one through the UDP NAT."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator

from probe.core.events import Event
from probe.core.planner import PlannerConfig
from probe.core.targets import Target
from probe.net.dial import Endpoint
from probe.run.discover import DiscoverOptions, DiscoverRun
from probe.run.discover_udp import UdpDiscoverOptions, UdpDiscoverRun
from probe.schemas import load
from probe.testing import ExpiringNat, ExpiringUdpNat
from tests.conftest import REGISTRY, scaled
from tests.run.helpers import probe_server
from tests.run.test_udp import through_nat

VALIDATOR = Draft202012Validator(load("events"), registry=REGISTRY)


def check(events: list[dict[str, Any]]) -> list[str]:
    """Validate every event as the line --ndjson prints; return their names."""
    for event in events:
        VALIDATOR.validate(json.loads(json.dumps(event)))
    return [event["event"] for event in events]


def test_a_tcp_discoverys_events_follow_the_schema(expiring_nat: Callable[..., ExpiringNat]) -> None:
    events: list[dict[str, Any]] = []

    async def body() -> None:
        async with probe_server() as served:
            nat = expiring_nat(upstream=served.tcp, idle_timeout=scaled(2.5), mode="drop")
            target = Target("tcp", nat.host, nat.port)
            await DiscoverRun(DiscoverOptions(Endpoint(target), PlannerConfig()), observer=events.append).run()

    asyncio.run(body())
    names = check(events)
    assert names[0] == "start" and names[-1] == "result"
    assert {"probe", "test", "finish", "after_expiry"} <= set(names)
    assert all(e["t"] >= 0 for e in events) and all(e.get("state") is None for e in events)


def test_a_udp_discoverys_events_follow_the_schema(expiring_udp_nat: Callable[..., ExpiringUdpNat]) -> None:
    events: list[dict[str, Any]] = []

    async def body() -> None:
        async with probe_server(udp=True) as served:
            _, target, control = through_nat(expiring_udp_nat, served)
            options = UdpDiscoverOptions(target, Endpoint(control), PlannerConfig())
            await UdpDiscoverRun(options, observer=events.append).run()

    asyncio.run(body())
    names = check(events)
    assert names[0] == "start" and names[-1] == "result" and "inbound_refresh" in names
    assert {e["state"] for e in events if e["event"] in ("probe", "test", "finish")} == {
        "unreplied", "replied", "stream"
    }  # fmt: skip


def test_the_schema_names_exactly_the_events_there_are() -> None:
    assert set(load("events")["properties"]["event"]["enum"]) == {e.value for e in Event}
    branches = {b["properties"]["event"]["const"] for b in load("events")["oneOf"]}
    assert branches == {e.value for e in Event}


def test_an_event_missing_its_fields_is_refused() -> None:
    assert not VALIDATOR.is_valid({"event": "probe", "t": 1.0})
    assert not VALIDATOR.is_valid({"event": "start", "t": -1.0, "target": "tcp://h:1", "rtt_s": 0.01})
    assert not VALIDATOR.is_valid({"event": "nope", "t": 1.0})
    assert VALIDATOR.is_valid({"event": "probe", "t": 1.0, "conn": 3, "age_s": 2.0, "path": 0, "family": 6})
