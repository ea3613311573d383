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
from typing import Any

from probe.core.after_expiry import AfterObservation, classify
from probe.core.endings import Ending
from probe.core.heartbeat import Heartbeat, HeartbeatConfig
from probe.core.model import to_json
from probe.core.nat import NatFacts, nat_facts
from probe.core.protocol import json_number
from probe.errors import TargetError
from probe.net.client import ConnectionEnded
from probe.net.dial import Reaching, dial
from probe.net.sockopts import KeepaliveSettings, read_keepalive, tcp_info
from probe.net.ws_client import WsProtocolConnection
from probe.run.after_expiry import lost_push_wait, speak_after_expiry
from probe.run.heartbeats import HeartbeatSender


@dataclass(frozen=True)
class CheckOptions(Reaching):
    idle_s: float
    keepalive: KeepaliveSettings = field(default_factory=KeepaliveSettings)
    grace_s: float = 1.0
    heartbeat: HeartbeatConfig | None = None
    #: When the idle failed, speak once on the connection and report what
    #: an application would meet.
    after_expiry: bool = True


@dataclass
class CheckResult:
    options: CheckOptions
    passed: bool
    failure_mode: str | None
    alive_s: float
    push_idle_s: float | None
    nat: NatFacts
    keepalive_in_force: dict[str, Any]
    tcp_info: dict[str, int] | None
    wall_s: float
    heartbeat: dict[str, Any] | None = None
    close: dict[str, Any] | None = None
    after_lost_push: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        o = self.options
        client_originated = o.keepalive.enabled or o.heartbeat is not None
        if o.heartbeat is not None:
            evidence = "server_push_with_client_heartbeats"
        elif o.keepalive.enabled:
            evidence = "server_push_with_client_keepalive"
        else:
            evidence = "server_push"
        return {
            "schema": "natprobe.check/1",
            "target": str(o.target),
            "transport": o.target.transport,
            "proxy": o.proxy,
            "idle_s": o.idle_s,
            "passed": self.passed,
            "outcome": "survived" if self.passed else "failed",
            "failure_mode": self.failure_mode,
            "alive_s": round(self.alive_s, 3),
            "push_idle_s": self.push_idle_s,
            # Keepalive probes and heartbeats come from this client: a pass
            # says "this setting keeps the connection usable", not that the
            # path keeps an idle flow (a NAT may re-create a mapping).
            "client_originated": client_originated,
            "evidence": evidence,
            "keepalive": o.keepalive.to_json(),
            "keepalive_in_force": self.keepalive_in_force,
            "heartbeat": self.heartbeat,
            "close": self.close,
            "tcp_info": self.tcp_info,
            # check has one connection: the one whose push was lost.
            "after_expiry": None
            if self.after_lost_push is None
            else {
                "outcome": None,
                "port_changed": None,
                "waited_s": None,
                "detail": "not measured: check keeps no quiet connection",
                "after_lost_push": self.after_lost_push,
            },
            "nat": to_json(self.nat),
            "wall_s": round(self.wall_s, 3),
        }


def heartbeat_json(config: HeartbeatConfig, beat: Heartbeat) -> dict[str, Any]:
    return {
        "interval_s": config.interval_s,
        "kind": config.kind,
        "mode": config.mode,
        "timeout_s": config.answer_timeout_s,
        **beat.stats(),
    }


async def run_check(options: CheckOptions, clock: Callable[[], float] = time.monotonic) -> CheckResult:
    started = clock()
    keepalive = options.keepalive if options.keepalive.enabled else None
    conn = await dial(options.endpoint, keepalive=keepalive)
    close_info: dict[str, Any] | None = None
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
                    close_info = {"code": exc.close_code, "reason": exc.close_reason}
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
        after: dict[str, Any] | None = None
        if options.after_expiry and mode == "silent_drop":
            # The push was due at idle_s and never came: the server's TCP may
            # still be retransmitting it.
            result = await speak_after_expiry(
                conn, lost_push_wait(options.grace_s, options.grace_s), welcome.observed, clock
            )
            after = result.to_json(lost_push=True)
        elif options.after_expiry and mode in ("reset", "closed"):
            ended = AfterObservation(answered=False, ended=Ending(mode), waited_s=0.0, ended_before=True)
            after = classify(ended).to_json(lost_push=True)
    except TargetError:
        conn.abort()
        raise
    await conn.close()
    return CheckResult(
        options=options,
        passed=passed,
        failure_mode=mode,
        alive_s=alive,
        push_idle_s=push_idle,
        nat=nat_facts(welcome.local, welcome.observed),
        keepalive_in_force=in_force,
        tcp_info=info,
        wall_s=clock() - started,
        heartbeat=None if beat is None or options.heartbeat is None else heartbeat_json(options.heartbeat, beat),
        close=close_info,
        after_lost_push=after,
    )
