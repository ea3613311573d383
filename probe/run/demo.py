"""The demos: a server and an emulated NAT on loopback, discovery through it;
and a hung server, watched by kernel keepalive and by a heartbeat."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from probe.core.heartbeat import HeartbeatConfig
from probe.core.hung import HungServerDemo, hung_server
from probe.core.keepalive import KeepaliveSettings
from probe.core.planner import PlannerConfig
from probe.core.results import DiscoverResult
from probe.core.server_registry import ServerConfig
from probe.core.targets import Scheme, Target
from probe.lab.emulator import Emulator
from probe.net.dial import Endpoint
from probe.net.server import ProbeServer
from probe.run.check import CheckOptions, run_check
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


#: The keepalive of the demo's first connection: a dead peer would be noticed
#: after 1 + 1 x 3 = 4 s. The hung server's kernel acknowledges every probe.
HUNG_KEEPALIVE = KeepaliveSettings(idle_s=1.0, interval_s=1.0, count=3)


async def run_hung_server(
    wait_s: float = 8.0, interval_s: float = 1.0, timeout_s: float = 2.0, clock: Callable[[], float] = time.monotonic
) -> HungServerDemo:
    """Two checks of ``wait_s`` on a server whose application hangs after its
    welcome: one with kernel keepalive, one with heartbeats the application
    must answer. Neither gets its push (the application never reads the
    request); what matters is which of them learns that."""
    started = clock()
    server = ProbeServer(ServerConfig(hang_after_welcome=True))
    try:
        host, port = await server.listen_tcp("127.0.0.1", 0)
        reach = Endpoint(Target(Scheme.TCP, host, port))
        beat = HeartbeatConfig(interval_s, kind="message", timeout_s=timeout_s)
        by_keepalive, by_heartbeat = await asyncio.gather(
            # No grace: no push will come, the wait is the whole of it.
            run_check(CheckOptions(reach, wait_s, HUNG_KEEPALIVE, grace_s=0.0, after_expiry=False), clock),
            run_check(CheckOptions(reach, wait_s, grace_s=0.0, heartbeat=beat, after_expiry=False), clock),
        )
    finally:
        await server.shutdown()
    return hung_server(by_keepalive, by_heartbeat, f"{host}:{port}", clock() - started)
