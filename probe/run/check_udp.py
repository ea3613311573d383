"""``check udp://``: does a UDP binding in a given flow state survive an idle period?"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from probe.core.check import CheckResult, Evidence, UdpCheck
from probe.core.evidence import Outcome
from probe.core.keepalive import KeepaliveInForce, KeepaliveSettings
from probe.core.nat import UNKNOWN
from probe.core.server_messages import Pushed
from probe.core.targets import Target
from probe.errors import TargetError
from probe.net.dial import Endpoint, dial
from probe.run.control import keep_busy
from probe.run.udp_session import UdpProbe, UdpSession, require_udp


@dataclass(frozen=True)
class UdpCheckOptions:
    target: Target
    #: The control connection's server, over TCP or WebSocket.
    control: Endpoint
    idle_s: float
    state: str = "replied"
    grace_s: float = 1.0


async def run_check_udp(options: UdpCheckOptions, clock: Callable[[], float] = time.monotonic) -> CheckResult:
    started = clock()
    control = await dial(options.control)
    fatal: list[BaseException] = []

    def fail(exc: BaseException) -> None:
        fatal.append(exc)

    session = UdpSession(control, options.target, clock, options.control.timeout_s, fail)
    session.wait_s = options.grace_s
    arrived: list[float] = []
    got = asyncio.Event()

    def on_push(probe: UdpProbe, at: float) -> None:
        arrived.append(at)
        got.set()

    session.on_push = on_push
    helpers: list[asyncio.Task[Any]] = []
    try:
        welcome = await control.hello(options.control.token, options.control.timeout_s)
        require_udp(welcome.raw, control.where, options.target)
        helpers = [asyncio.create_task(session.reader()), asyncio.create_task(keep_busy(control, fail))]
        probe = await session.open("check")
        since = await session.bind(probe, options.state)
        if since is None:
            raise TargetError(f"no answer from {options.target}: is UDP blocked on the way, or the port wrong?")
        # Pacing, not synchronisation: the idle period is what is measured.
        await asyncio.sleep(max(0.0, since + options.idle_s - clock()))
        async with asyncio.timeout(options.control.timeout_s):
            report = await session.push(probe)
        if not isinstance(report, Pushed) or not report.sent:
            reason = report.reason if isinstance(report, Pushed) else None
            raise TargetError(f"{control.where} did not push ({str(reason)[:40]})")
        deadline = clock() + options.grace_s
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, deadline - clock())):
                await got.wait()
        if fatal:
            raise fatal[0]
        end = arrived[0] if arrived else deadline
    except TimeoutError:
        raise TargetError(f"{control.where} did not answer push_now") from None
    finally:
        for task in helpers:
            task.cancel()
        session.close_all()
        control.abort()
    passed = bool(arrived)
    return CheckResult(
        target=str(options.target),
        transport="udp",
        proxy=None,
        idle_s=options.idle_s,
        passed=passed,
        outcome=Outcome.of(passed),
        # UDP has no reset or close: a binding that is gone is silence.
        failure_mode=None if passed else "silent_drop",
        alive_s=round(end - since, 3),
        push_idle_s=report.idle_s,
        client_originated=False,
        evidence=Evidence.SERVER_PUSH,
        keepalive=KeepaliveSettings(),
        keepalive_in_force=KeepaliveInForce(enabled=False),
        heartbeat=None,
        close=None,
        tcp_info=None,
        after_expiry=None,
        nat=session.nat or UNKNOWN,
        wall_s=round(clock() - started, 3),
        udp=UdpCheck(options.state, str(options.control.target), report.copies or 0),
    )
