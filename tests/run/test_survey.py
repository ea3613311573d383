"""survey: several paths at once, through the test kit's NATs, on loopback.

One natprobe server listens on two ports; each port sits behind an emulated
NAT with its own idle timeout. Both brackets must be right, and the survey
must take about the slower path's time, not the sum.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest

from probe.core.planner import PlannerConfig
from probe.core.targets import Target
from probe.errors import ExitCode, UsageError
from probe.net.dial import Endpoint
from probe.net.server import ServerConfig
from probe.run.survey import SurveyOptions, expand, run_survey
from probe.testing import ExpiringNat
from tests.conftest import scaled, validate_output
from tests.run.helpers import probe_server

NatFactory = Callable[..., ExpiringNat]
SHORT, LONG = scaled(2.0), scaled(3.5)


def _tcp(host: str, port: int) -> Endpoint:
    return Endpoint(Target("tcp", host, port))


def test_two_paths_are_measured_side_by_side(expiring_nat: NatFactory) -> None:
    async def body() -> dict[str, Any]:
        async with probe_server() as served:
            second = await served.server.listen_tcp("127.0.0.1", 0)
            short = expiring_nat(upstream=served.tcp, idle_timeout=SHORT)
            long = expiring_nat(upstream=second, idle_timeout=LONG)
            options = SurveyOptions((_tcp(short.host, short.port), _tcp(long.host, long.port)), PlannerConfig())
            return validate_output((await run_survey(options)).to_json())

    survey = asyncio.run(body())
    paths = survey["paths"]
    assert isinstance(paths, list) and len(paths) == 2
    for path, truth in zip(paths, (SHORT, LONG), strict=True):
        result = path["result"]
        assert path["error"] is None and path["family"] == 4
        assert result["lower_s"] <= truth <= result["upper_s"]
        assert result["width_s"] <= max(0.02 * truth, 0.5) + 1e-3
    walls = [p["result"]["wall_s"] for p in paths]
    totals = [p["result"]["total_s"] for p in paths]
    # Side by side: the slowest path's time (and its start), never the sum.
    assert max(walls) <= survey["wall_s"] <= max(walls) + scaled(1.0)
    assert max(totals) <= survey["total_s"] <= max(totals) + scaled(1.0)
    assert survey["total_s"] < sum(totals)
    assert survey["wall_s"] <= 1.15 * LONG + scaled(3)


def test_paths_to_one_server_share_its_per_address_limit(expiring_nat: NatFactory) -> None:
    # 40 sessions per address for two paths from 127.0.0.1: neither takes
    # all of it, neither is refused, and the server never says busy.
    async def body() -> tuple[dict[str, Any], int]:
        async with probe_server(ServerConfig(max_per_ip=40)) as served:
            second = await served.server.listen_tcp("127.0.0.1", 0)
            a = expiring_nat(upstream=served.tcp, idle_timeout=SHORT)
            b = expiring_nat(upstream=second, idle_timeout=SHORT)
            options = SurveyOptions((_tcp(a.host, a.port), _tcp(b.host, b.port)), PlannerConfig())
            survey = validate_output((await run_survey(options)).to_json())
            return survey, served.server.config.max_per_ip

    survey, limit = asyncio.run(body())
    pools = []
    for path in survey["paths"]:
        result = path["result"]
        assert result["lower_s"] <= SHORT <= result["upper_s"]
        connections = result["connections"]
        assert connections["limited_by_server"] is True
        pools.append(connections["pool"])
        # Each path: its pool, its control, its quiet and its kept connection.
        assert connections["max_open"] <= connections["pool"] + 3
    assert sum(pools) + 2 * 2 <= limit


def test_a_path_that_cannot_be_reached_is_reported_and_the_others_measured(expiring_nat: NatFactory) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: refuses

        async def body() -> dict[str, Any]:
            async with probe_server() as served:
                nat = expiring_nat(upstream=served.tcp, idle_timeout=SHORT)
                dead = _tcp("127.0.0.1", closed.getsockname()[1])
                options = SurveyOptions((dead, _tcp(nat.host, nat.port)), PlannerConfig())
                survey = await run_survey(options)
                assert survey.exit_code() == ExitCode.UNREACHABLE
                return validate_output(survey.to_json())

        survey = asyncio.run(body())
    dead_path, live_path = survey["paths"]
    assert dead_path["result"] is None and dead_path["error"]["exit_code"] == 3
    assert "refused" in dead_path["error"]["message"]
    assert live_path["error"] is None and live_path["result"]["lower_s"] <= SHORT <= live_path["result"]["upper_s"]
    # The unreachable path holds no bracket back: wall_s is the live path's,
    # before its after-expiry test ends the survey.
    assert live_path["result"]["wall_s"] <= survey["wall_s"] < survey["total_s"]


def test_a_literal_of_the_other_family_is_a_usage_error() -> None:
    async def body() -> None:
        await expand(_tcp("::1", 4040), "4")

    with pytest.raises(UsageError, match=r"tcp://\[::1\]:4040 is an IPv6 address and --family is 4"):
        asyncio.run(body())


def test_an_exporter_survey_job_runs_every_path_and_its_metrics_name_them(expiring_nat: NatFactory) -> None:
    from probe.core.exporter_config import parse_config
    from probe.core.metrics import ProbeResult, ProbeState, families
    from probe.run.exporter import run_job

    async def body() -> ProbeResult:
        async with probe_server() as served:
            nat = expiring_nat(upstream=served.tcp, idle_timeout=SHORT)
            direct = f"tcp://127.0.0.1:{served.tcp[1]}"
            config = parse_config(
                f"probes:\n  - name: paths\n    targets: [tcp://{nat.host}:{nat.port}, '{direct}']\n"
                "    survey: {budget: %ss}\n    every: 1h\n" % scaled(6)
            )
            return await run_job(config.probes[0])

    survey = asyncio.run(body())
    measured, direct = validate_output(survey.to_json())["paths"]
    assert measured["result"]["lower_s"] <= SHORT <= measured["result"]["upper_s"]
    # The path without a NAT never failed: the budget ended it, no timeout seen.
    assert direct["result"]["upper_s"] is None and direct["result"]["reason"] == "budget"
    state = ProbeState("paths", "survey")
    state.record(0.0, 1.0, survey, None)
    got = {f.name: f.samples for f in families([state], "0")}
    assert [labels["path"] for labels, _ in got["natprobe_survey_path_success"]] == [
        measured["target"], direct["target"],
    ]  # fmt: skip
    assert [value for _, value in got["natprobe_discover_upper_seconds"]] == [measured["result"]["upper_s"]]
