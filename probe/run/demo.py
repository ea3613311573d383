"""The demo: a server and an emulated NAT on loopback, discovery through it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from probe.core.planner import PlannerConfig
from probe.core.results import DiscoverResult
from probe.core.targets import Scheme, Target
from probe.lab.emulator import Emulator
from probe.net.dial import Endpoint
from probe.net.server import ProbeServer
from probe.run.discover import DiscoverOptions, DiscoverRun


@dataclass(frozen=True)
class DemoResult:
    """The discovery through the emulator, and the truth it is compared with."""

    discover: DiscoverResult
    truth_s: float
    mode: str
    emulator: str
    server: str

    def to_json(self) -> dict[str, Any]:
        return {
            **self.discover.to_json(),
            "truth_s": self.truth_s,
            "demo": {"mode": self.mode, "emulator": self.emulator, "server": self.server},
        }


async def run_demo(
    nat_timeout_s: float,
    mode: str = "drop",
    observer: Callable[[dict[str, Any]], None] | None = None,
    drive: Callable[[DiscoverRun], Awaitable[DiscoverResult]] | None = None,
) -> DemoResult:
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
        found = await (drive(runner) if drive is not None else runner.run())
    finally:
        if emulator is not None:
            await emulator.close()
        await server.shutdown()
    return DemoResult(found, nat_timeout_s, mode, f"{host}:{port}", f"{upstream[0]}:{upstream[1]}")
