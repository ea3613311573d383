"""The control connection's chores, shared by every discovery (TCP, WebSocket, UDP)."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable
from dataclasses import replace

from probe.core.planner import PlannerConfig
from probe.errors import TargetError
from probe.net.client import ConnectionEnded, MessageConnection

CONTROL_PING_S = 0.5


async def measure_rtt(
    control: MessageConnection, clock: Callable[[], float], timeout_s: float, count: int = 3
) -> float:
    """The median of ``count`` ping/pong round trips on the control connection."""
    samples = []
    for n in range(count):
        sent = clock()
        control.send({"op": "ping", "id": f"rtt{n}"})
        try:
            async with asyncio.timeout(timeout_s):
                msg = await control.recv()
        except TimeoutError:
            raise TargetError(f"{control.where} stopped answering pings") from None
        except ConnectionEnded as exc:
            raise TargetError(f"{control.where} ended the connection ({exc})") from None
        if msg.get("op") != "pong":
            raise TargetError(f"{control.where} answered ping with {str(msg.get('op'))[:40]!r}")
        samples.append(clock() - sent)
    return statistics.median(samples)


def timed(cfg: PlannerConfig, rtt: float, grace_s: float | None, max_conns: int) -> PlannerConfig:
    """The planner's grace and suspicion times for a path with this RTT."""
    # A lost push is retransmitted after at least 200 ms (Linux's minimum
    # RTO) plus an RTT; the grace covers one such loss on a jittery path.
    grace = grace_s if grace_s is not None else max(cfg.grace_s, 0.4 + 4 * rtt)
    suspect = min(grace / 2, max(cfg.suspect_s, 3 * rtt + 0.02))
    return replace(cfg, grace_s=grace, suspect_s=suspect, max_conns=max_conns)


async def keep_busy(control: MessageConnection, fail: Callable[[BaseException], None]) -> None:
    """Ping the control connection steadily.

    It crosses the same middleboxes; steady traffic keeps it from ever being
    idle long enough to be forgotten.
    """
    while True:
        await asyncio.sleep(CONTROL_PING_S)
        try:
            control.send({"op": "ping"})
        except (OSError, RuntimeError) as exc:
            fail(TargetError(f"lost the control connection to {control.where} ({exc})"))
            return
