"""``check``: does one connection idle for a given time still get the push?"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from probe.core.targets import Target
from probe.errors import TargetError
from probe.net.client import ConnectionEnded, ProtocolConnection, nat_facts
from probe.net.sockopts import KeepaliveSettings, read_keepalive, tcp_info


@dataclass(frozen=True)
class CheckOptions:
    target: Target
    idle_s: float
    keepalive: KeepaliveSettings = field(default_factory=KeepaliveSettings)
    grace_s: float = 1.0
    token: str | None = None


@dataclass
class CheckResult:
    options: CheckOptions
    passed: bool
    failure_mode: str | None
    alive_s: float
    push_idle_s: float | None
    nat: dict[str, Any]
    keepalive_in_force: dict[str, Any]
    tcp_info: dict[str, int] | None
    wall_s: float
    interrupted: bool = False

    def to_json(self) -> dict[str, Any]:
        ka = self.options.keepalive
        return {
            "schema": "natprobe.check/1",
            "target": str(self.options.target),
            "transport": self.options.target.transport,
            "idle_s": self.options.idle_s,
            "passed": self.passed,
            "outcome": "survived" if self.passed else "failed",
            "failure_mode": self.failure_mode,
            "alive_s": round(self.alive_s, 3),
            "push_idle_s": self.push_idle_s,
            # Kernel keepalive probes are sent by this client: a pass then
            # says "this setting keeps the connection usable", not that the
            # path itself keeps an idle flow (a NAT may re-create a mapping).
            "client_originated": ka.enabled,
            "evidence": "server_push_with_client_keepalive" if ka.enabled else "server_push",
            "keepalive": ka.to_json(),
            "keepalive_in_force": self.keepalive_in_force,
            "tcp_info": self.tcp_info,
            "nat": self.nat,
            "wall_s": round(self.wall_s, 3),
            "interrupted": self.interrupted,
        }


async def run_check(options: CheckOptions, clock: Any = time.monotonic) -> CheckResult:
    target = options.target
    started = clock()
    conn = await ProtocolConnection.open(target.host, target.port, keepalive=options.keepalive)
    try:
        welcome = await conn.hello(options.token)
        in_force = read_keepalive(conn.socket)
        conn.send({"op": "push_after", "id": "check", "idle_s": options.idle_s})
        sent = clock()
        passed, mode, push_idle = False, None, None
        try:
            async with asyncio.timeout(options.idle_s + options.grace_s):
                while True:
                    msg = await conn.recv()
                    if msg.get("op") == "push":
                        idle = msg.get("idle_s")
                        push_idle = (
                            float(idle) if isinstance(idle, (int, float)) and not isinstance(idle, bool) else None
                        )
                        passed = True
                        break
        except TimeoutError:
            mode = "silent_drop"
        except ConnectionEnded as exc:
            mode = "timeout" if exc.timed_out else exc.mode.value
        alive = clock() - sent
        if passed:
            conn.send({"op": "ack", "id": "check"})
        info = tcp_info(conn.socket)
    except TargetError:
        conn.abort()
        raise
    conn.abort()
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
    )
