"""``locate``: find the hop whose state times out (method in docs/locate.md).

One idle test connection per TTL k = 1..H (H: hops to the server, from the
trace) sends kernel keepalive probes with IP TTL k every r seconds, so it
refreshes every stateful box up to hop k and none beyond; a baseline without
probes shows the wait outlived the timeout. After the wait the server pushes
on each, asked over the busy control connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from probe.core.locate import Verdict, decide, scope, sentence
from probe.core.planner import PlannerConfig
from probe.core.protocol import json_number
from probe.core.targets import Target
from probe.errors import TargetError
from probe.net.client import ConnectionEnded, MessageConnection
from probe.net.dial import Reaching, dial
from probe.net.server import ack_now
from probe.net.sockopts import KeepaliveSettings, apply_keepalive
from probe.net.trace import Hop, supported, trace
from probe.run.discover import DiscoverOptions, DiscoverRun

#: The wait, in timeouts: comfortably above T, so every box beyond k forgot.
WAIT_FACTOR = 1.6
#: Unanswered probes end a connection only after this many (the kernel's most).
PROBES = 127


@dataclass(frozen=True)
class LocateOptions(Reaching):
    #: The path's idle timeout, if known; else a discovery finds it first.
    timeout_s: float | None = None
    max_hops: int = 16


@dataclass
class LocateResult:
    options: LocateOptions
    hops: list[Hop]
    timeout_s: float
    verdict: Verdict
    rounds: list[dict[str, Any]]
    wall_s: float
    probe_interval_s: int
    wait_s: float
    discovered: dict[str, Any] | None = field(default=None)

    def to_json(self) -> dict[str, Any]:
        v = self.verdict
        address = None
        if v.ttl is not None:
            address = next((h.address for h in self.hops if h.ttl == v.ttl), None)
        return {
            "schema": "natprobe.locate/1",
            "target": str(self.options.target),
            "hops": [h.to_json() for h in self.hops],
            "expiring_hop": None if v.ttl is None else {"ttl": v.ttl, "address": address, "scope": scope(address)},
            "at_destination": v.at_destination,
            "consistent": v.consistent,
            "reason": v.reason,
            "summary": sentence(v, address),
            "timeout_s": round(self.timeout_s, 3),
            "wait_s": round(self.wait_s, 3),
            "probe_interval_s": self.probe_interval_s,
            "rounds": self.rounds,
            "wall_s": round(self.wall_s, 3),
        }


def _ttl_option(sock: socket.socket) -> tuple[int, int]:
    if sock.family == socket.AF_INET6:
        return socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS
    return socket.IPPROTO_IP, socket.IP_TTL


def set_ttl(sock: socket.socket, ttl: int) -> None:
    sock.setsockopt(*_ttl_option(sock), ttl)


def get_ttl(sock: socket.socket) -> int:
    return sock.getsockopt(*_ttl_option(sock))


def _end(conn: MessageConnection, ttl: int | None) -> None:
    """Close a test connection, at full TTL again: its FIN and retransmissions
    would otherwise die at hop k and spend that router's ICMP rate limit
    (Linux: about one a second, burst 6), which the next trace needs."""
    if ttl is not None:
        with contextlib.suppress(OSError):
            set_ttl(conn.socket, ttl)
    conn.abort()


async def _resolve(target: Target) -> tuple[str, int]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetError(f"cannot resolve {target.host}: {exc.strerror or exc}") from None
    return str(infos[0][4][0]), target.port


async def run_locate(options: LocateOptions, clock: Callable[[], float] = time.monotonic) -> LocateResult:
    reason = supported()
    if reason is not None:
        raise TargetError(reason)
    started = clock()
    address, port = await _resolve(options.target)
    hops = await asyncio.get_running_loop().run_in_executor(None, trace, address, port, options.max_hops, 1.0)
    if not hops or not hops[-1].reached:
        raise TargetError(f"{address}:{port} was not reached within {options.max_hops} hops")
    path = hops[-1].ttl
    discovered = None
    timeout = options.timeout_s
    if timeout is None:
        run = DiscoverRun(DiscoverOptions(options.endpoint, PlannerConfig(), after_expiry=False))
        discovered = (await run.run()).to_json()
        timeout = json_number(discovered.get("upper_s"))
        if timeout is None:
            raise TargetError("discover found no idle timeout on this path: there is nothing to locate")
    # Probes well inside the timeout, in the kernel's whole seconds.
    interval = max(1, math.floor(timeout / 3))
    wait = WAIT_FACTOR * timeout
    outcomes, baseline = await _round(options, path, interval, wait)
    rounds = _rounds(1, outcomes, baseline)
    verdict = decide(outcomes, path, baseline)
    if verdict.recheck:
        # Borderline: a survival that contradicts the rest (a NAT's loose
        # pickup, a push lost on the way). Measure again; a TTL counts as
        # surviving only if it survived both times.
        again, baseline_again = await _round(options, path, interval, wait)
        rounds += _rounds(2, again, baseline_again)
        for ttl in verdict.recheck:
            outcomes[ttl] = outcomes[ttl] and again[ttl]
        verdict = decide(outcomes, path, baseline and baseline_again)
    return LocateResult(options, hops, timeout, verdict, rounds, clock() - started, interval, wait, discovered)


def _rounds(number: int, outcomes: dict[int, bool], baseline: bool) -> list[dict[str, Any]]:
    rows = [{"round": number, "ttl": 0, "probes": False, "outcome": "survived" if baseline else "failed"}]
    rows += [
        {"round": number, "ttl": ttl, "probes": True, "outcome": "survived" if ok else "failed"}
        for ttl, ok in outcomes.items()
    ]
    return rows


async def _round(options: LocateOptions, path: int, interval: int, wait: float) -> tuple[dict[int, bool], bool]:
    """One round: a baseline and one connection per TTL; which pushes arrive."""
    endpoint = options.endpoint
    control = await dial(endpoint)
    conns: dict[int, tuple[MessageConnection, str]] = {}
    full_ttl: int | None = None
    try:
        welcome = await control.hello(endpoint.token, endpoint.timeout_s)
        for ttl in range(0, path + 1):  # 0: the baseline, no probes
            conn = await dial(endpoint)
            hello = await conn.hello(endpoint.token, endpoint.timeout_s, run=welcome.session)
            conns[ttl] = (conn, hello.session)
            if ttl:
                # Send the ACK of the welcome now, at full TTL: a delayed ACK
                # leaving after the TTL is lowered dies on the way, and the
                # server's retransmissions would hold the push back.
                ack_now(conn.socket)
                full_ttl = get_ttl(conn.socket)
                set_ttl(conn.socket, ttl)
                apply_keepalive(conn.socket, KeepaliveSettings(idle_s=interval, interval_s=interval, count=PROBES))
        # Keep the control connection busy; the test connections stay idle.
        pinger = asyncio.create_task(_ping(control))
        try:
            await asyncio.sleep(wait)
            for ttl, (_, session) in conns.items():
                control.send({"op": "push_now", "id": f"l{ttl}", "session": session})
            grace = 1.0
            arrived = await asyncio.gather(*(_arrival(conn, grace + 1.0) for conn, _ in conns.values()))
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
    finally:
        for ttl, (conn, _) in conns.items():
            _end(conn, full_ttl if ttl else None)
        control.abort()
    outcomes = dict(zip(conns, arrived, strict=True))
    baseline = outcomes.pop(0)
    return outcomes, baseline


async def _ping(control: MessageConnection) -> None:
    while True:
        await asyncio.sleep(0.5)
        control.send({"op": "ping"})


async def _arrival(conn: MessageConnection, within_s: float) -> bool:
    """Whether the push arrives on ``conn`` in time."""
    try:
        async with asyncio.timeout(within_s):
            while True:
                msg = await conn.recv()
                if msg.get("op") == "push":
                    return True
    except (TimeoutError, ConnectionEnded, TargetError):
        return False
