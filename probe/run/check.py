"""``check``: does one connection idle for a given time still get the push?

With kernel keepalive or application heartbeats, the question becomes "does
this setting keep the connection usable for that long?": the server still
pushes at the end, but the client sent traffic in between.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from probe.core.after_expiry import AfterObservation, AfterResult, after_expiry, classify
from probe.core.check import CheckResult, Close, evidence
from probe.core.endings import Ending
from probe.core.evidence import Outcome
from probe.core.heartbeat import Heartbeat, HeartbeatConfig
from probe.core.keepalive import KeepaliveSettings
from probe.core.nat import nat_facts
from probe.core.protocol import json_number
from probe.errors import TargetError
from probe.net.client import ConnectionEnded
from probe.net.dial import Reaching, dial
from probe.net.sockopts import read_keepalive, tcp_info
from probe.net.ws_client import WsProtocolConnection
from probe.run.after_expiry import lost_push_wait, speak_after_expiry
from probe.run.heartbeats import HeartbeatSender

#: check keeps no second connection to stay quiet beside the one it tests.
UNMEASURED = "not measured: check keeps no quiet connection"


@dataclass(frozen=True)
class CheckOptions(Reaching):
    idle_s: float
    keepalive: KeepaliveSettings = field(default_factory=KeepaliveSettings)
    grace_s: float = 1.0
    heartbeat: HeartbeatConfig | None = None
    #: When the idle failed, speak once on the connection and report what
    #: an application would meet.
    after_expiry: bool = True


async def run_check(options: CheckOptions, clock: Callable[[], float] = time.monotonic) -> CheckResult:
    started = clock()
    keepalive = options.keepalive if options.keepalive.enabled else None
    conn = await dial(options.endpoint, keepalive=keepalive)
    close_info: Close | None = None
    beat: Heartbeat | None = None
    try:
        welcome = await conn.hello(options.endpoint.token, options.endpoint.timeout_s)
        in_force = read_keepalive(conn.socket)
        conn.send({"op": "push_after", "id": "check", "idle_s": options.idle_s})
        sent = clock()
        deadline = sent + options.idle_s + options.grace_s
        sender = None
        if options.heartbeat is not None:
            beat = Heartbeat(options.heartbeat, started=sent)

            async def send_beat(number: int) -> None:
                conn.send({"op": "beat", "id": str(number)})

            ping = conn.ping if isinstance(conn, WsProtocolConnection) else None
            sender = HeartbeatSender(beat, clock, send_beat, ping)
        passed, mode, push_idle = False, None, None
        while True:
            wake = deadline if beat is None else min(deadline, beat.next_wakeup())
            try:
                async with asyncio.timeout(max(0.0, wake - clock())):
                    msg = await conn.recv()
            except TimeoutError:
                now = clock()
                if now >= deadline:
                    mode = "silent_drop"
                    break
                if beat is not None and sender is not None:
                    if beat.timed_out(now):
                        mode = "heartbeat_timeout"
                        break
                    if now >= beat.due():
                        await sender.send()
                continue
            except ConnectionEnded as exc:
                mode = "timeout" if exc.timed_out else exc.mode.value
                if exc.close_code is not None:
                    close_info = Close(exc.close_code, exc.close_reason or "")
                break
            op = msg.get("op")
            if op == "push":
                push_idle = json_number(msg.get("idle_s"))
                passed = True
                break
            if op == "beat_ack" and beat is not None:
                ident = str(msg.get("id", ""))
                beat.answered(clock(), int(ident) if ident.isdigit() else None)
        alive = clock() - sent
        if sender is not None:
            sender.cancel()
        if passed:
            conn.send({"op": "ack", "id": "check"})
        info = tcp_info(conn.socket)
        after: AfterResult | None = None
        if options.after_expiry and mode == "silent_drop":
            # The push was due at idle_s and never came: the server's TCP may
            # still be retransmitting it.
            result = await speak_after_expiry(
                conn, lost_push_wait(options.grace_s, options.grace_s), welcome.observed, clock
            )
            after = result
        elif options.after_expiry and mode in ("reset", "closed"):
            ended = AfterObservation(answered=False, ended=Ending(mode), waited_s=0.0, ended_before=True)
            after = classify(ended)
    except TargetError:
        conn.abort()
        raise
    await conn.close()
    o = options
    return CheckResult(
        target=str(o.target),
        transport=o.target.transport,
        proxy=o.proxy,
        idle_s=o.idle_s,
        passed=passed,
        outcome=Outcome.of(passed),
        failure_mode=mode,
        alive_s=round(alive, 3),
        push_idle_s=push_idle,
        client_originated=o.keepalive.enabled or o.heartbeat is not None,
        evidence=evidence(o.keepalive.enabled, o.heartbeat is not None),
        keepalive=o.keepalive,
        keepalive_in_force=in_force,
        heartbeat=None if beat is None else beat.report(),
        close=close_info,
        tcp_info=info,
        # check has one connection: the one whose push was lost.
        after_expiry=None if after is None else after_expiry(None, after, UNMEASURED),
        nat=nat_facts(welcome.local, welcome.observed),
        wall_s=round(clock() - started, 3),
    )
