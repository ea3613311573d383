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
from dataclasses import dataclass

from probe.core.keepalive import KeepaliveSettings
from probe.core.locate import HopSeen, LocateResult, decide, located, rounds
from probe.core.planner import PlannerConfig
from probe.core.targets import Target
from probe.errors import TargetError
from probe.net.client import ConnectionEnded, MessageConnection
from probe.net.dial import Reaching, dial
from probe.net.server import ack_now
from probe.net.sockopts import apply_keepalive
from probe.net.trace import supported, trace
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
    timeout = options.timeout_s
    if timeout is None:
        run = DiscoverRun(DiscoverOptions(options.endpoint, PlannerConfig(), after_expiry=False))
        timeout = (await run.run()).summary().upper_s
        if timeout is None:
            raise TargetError("discover found no idle timeout on this path: there is nothing to locate")
    # Probes well inside the timeout, in the kernel's whole seconds.
    interval = max(1, math.floor(timeout / 3))
    wait = WAIT_FACTOR * timeout
    outcomes, baseline = await _round(options, path, interval, wait)
    seen = rounds(1, outcomes, baseline)
    verdict = decide(outcomes, path, baseline)
    if verdict.recheck:
        # Borderline: a survival that contradicts the rest (a NAT's loose
        # pickup, a push lost on the way). Measure again; a TTL counts as
        # surviving only if it survived both times.
        again, baseline_again = await _round(options, path, interval, wait)
        seen += rounds(2, again, baseline_again)
        for ttl in verdict.recheck:
            outcomes[ttl] = outcomes[ttl] and again[ttl]
        verdict = decide(outcomes, path, baseline and baseline_again)
    seen_hops = [HopSeen(h.ttl, h.address, None if h.rtt_s is None else round(h.rtt_s, 5)) for h in hops]
    return located(str(options.target), seen_hops, verdict, (timeout, wait, interval, clock() - started), seen)


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
