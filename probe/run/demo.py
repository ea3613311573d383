"""The demo: a server and an emulated NAT on loopback, discovery through it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from probe.core.planner import PlannerConfig
from probe.core.results import DiscoverResult
from probe.core.targets import Scheme, Target
from probe.lab.emulator import Emulator
from probe.net.dial import Endpoint
from probe.net.server import ProbeServer
from probe.run.discover import DiscoverOptions, DiscoverRun


async def run_demo(
    nat_timeout_s: float,
    mode: str = "drop",
    observer: Callable[[dict[str, Any]], None] | None = None,
    drive: Callable[[DiscoverRun], Awaitable[DiscoverResult]] | None = None,
) -> dict[str, Any]:
    """``drive`` runs the discovery (the CLI passes one with a live view)."""
    server = ProbeServer()
    emulator: Emulator | None = None
    try:
        upstream = await server.listen_tcp("127.0.0.1", 0)
        emulator = Emulator(upstream, nat_timeout_s, mode)
        host, port = await emulator.listen("127.0.0.1", 0)
        runner = DiscoverRun(
            DiscoverOptions(Endpoint(Target(Scheme.TCP, host, port)), PlannerConfig()), observer=observer
        )
        result = (await (drive(runner) if drive is not None else runner.run())).to_json()
    finally:
        if emulator is not None:
            await emulator.close()
        await server.shutdown()
    result["truth_s"] = nat_timeout_s
    result["demo"] = {"mode": mode, "emulator": f"{host}:{port}", "server": f"{upstream[0]}:{upstream[1]}"}
    return result
