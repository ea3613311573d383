"""The one place that picks a discovery's runner by transport."""

from __future__ import annotations

import pytest

from probe.core.planner import PlannerConfig
from probe.core.targets import Target
from probe.net.dial import Endpoint
from probe.run.discover import DiscoverRun
from probe.run.discover_udp import UdpDiscoverRun
from probe.run.jobs import DEFAULT_MAX_IDLE_S, DEFAULT_PARALLEL, DiscoverJob, discovery


@pytest.mark.parametrize(("scheme", "kind"), [("tcp", DiscoverRun), ("ws", DiscoverRun), ("wss", DiscoverRun),
                                              ("udp", UdpDiscoverRun)])  # fmt: skip
def test_each_transport_gets_its_runner(scheme: str, kind: type) -> None:
    runner = discovery(DiscoverJob(Endpoint(Target(scheme, "198.18.0.5", 4040)), PlannerConfig()))  # type: ignore[arg-type]
    assert type(runner) is kind and runner.own_signals is True


def test_a_udp_discovery_is_driven_over_tcp_on_its_own_host_and_port_unless_told() -> None:
    udp = Endpoint(Target("udp", "198.18.0.5", 5000), token="s3cret")  # type: ignore[arg-type]
    runner = discovery(DiscoverJob(udp, PlannerConfig()), own_signals=False)
    assert isinstance(runner, UdpDiscoverRun) and runner.own_signals is False
    control = runner.options.control
    assert str(control.target) == "tcp://198.18.0.5:5000" and control.token == "s3cret"
    told = Endpoint(Target("wss", "198.18.0.6", 443, "/np"))  # type: ignore[arg-type]
    runner = discovery(DiscoverJob(udp, PlannerConfig(), control=told))
    assert isinstance(runner, UdpDiscoverRun) and runner.options.control is told


def test_the_shared_defaults_are_the_planners() -> None:
    assert DEFAULT_PARALLEL == PlannerConfig().max_conns + 1 == 32
    assert DEFAULT_MAX_IDLE_S == PlannerConfig().max_idle_s == 7800.0
