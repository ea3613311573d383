"""``hold``: keep one connection to any TCP server and see how long it lives."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import time
from dataclasses import dataclass, field
from typing import Any

from probe.core.endings import Ending
from probe.core.hold import HoldResult, TcpHold
from probe.core.keepalive import KeepaliveSettings
from probe.core.protocol import MAX_LINE, server_close_reason
from probe.core.targets import format_address
from probe.core.text import printable
from probe.net.dial import Reaching, dial_stream
from probe.net.sockopts import apply_keepalive, read_keepalive, tcp_info

#: TCP_INFO is sampled this often, so the counters from just before the end
#: survive (after a reset the kernel has forgotten most of them).
SAMPLE_S = 1.0


@dataclass(frozen=True)
class HoldOptions(Reaching):
    """``endpoint``: any TCP server (a tcp:// target)."""

    duration_s: float
    keepalive: KeepaliveSettings = field(default_factory=KeepaliveSettings)


async def run_hold(options: HoldOptions, clock: Any = time.monotonic) -> HoldResult:
    reader, writer = await dial_stream(options.endpoint)
    sock = writer.get_extra_info("socket")
    try:
        apply_keepalive(sock, options.keepalive)
    except BaseException:
        writer.transport.abort()
        raise
    started = clock()
    in_force = read_keepalive(sock)
    local_host, local_port = writer.get_extra_info("sockname")[:2]
    received = 0
    head = bytearray()  # the first bytes received: a natprobe server's reason
    last_info = tcp_info(sock)
    ended, detail = Ending.DURATION, f"lasted {options.duration_s:g}s"

    async def watch() -> tuple[Ending, str]:
        nonlocal received
        while True:
            try:
                data = await reader.read(65536)
            except ConnectionResetError:
                return Ending.RESET, "connection reset by the peer or a middlebox"
            except OSError as exc:
                if exc.errno == errno.ETIMEDOUT:
                    return Ending.TIMEOUT, "the kernel gave up: keepalive probes or sent data went unanswered"
                return Ending.RESET, exc.strerror or str(exc)
            if not data:
                return Ending.CLOSED, "closed by the peer or a middlebox (FIN)"
            received += len(data)
            if len(head) < MAX_LINE:
                head.extend(data[: MAX_LINE - len(head)])

    watcher = asyncio.create_task(watch())
    try:
        deadline = started + options.duration_s
        while not watcher.done():
            left = deadline - clock()
            if left <= 0:
                break
            done, _ = await asyncio.wait({watcher}, timeout=min(SAMPLE_S, left))
            if not done:
                last_info = tcp_info(sock) or last_info
        if watcher.done():
            ended, detail = watcher.result()
        reason = server_close_reason(bytes(head))
        if reason is not None:
            detail = f"the far end is a natprobe server; it ended the connection: {printable(reason, 200)}"
        alive = min(clock() - started, options.duration_s) if ended is Ending.DURATION else clock() - started
        end_info = tcp_info(sock)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watcher
        writer.transport.abort()
    return HoldResult(
        target=options.endpoint.where,
        transport="tcp",
        proxy=options.proxy,
        duration_s=options.duration_s,
        alive_s=round(alive, 3),
        ended=ended,
        detail=detail,
        lasted=ended is Ending.DURATION,
        natprobe_server=reason is not None,
        tcp=TcpHold(
            received, options.keepalive, in_force, last_info, end_info, format_address(str(local_host), int(local_port))
        ),
    )
