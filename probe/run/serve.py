"""Run the natprobe server until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Callable
from functools import partial

from probe.core.targets import format_address
from probe.errors import TargetError
from probe.net.server import ProbeServer, ServerConfig
from probe.net.ws_server import listen_ws

FREEZE_EVERY_S = 1.0


async def keep_gc_cheap(period_s: float = FREEZE_EVERY_S) -> None:
    """Move long-lived objects out of the cyclic GC's reach, now and then.

    With ten thousand idle sessions a full collection walks every one of
    them and stalls the loop for tens of milliseconds, making pushes late.
    Sessions break their own reference cycles when they close, so reference
    counting still frees frozen ones; the collector only sees what is new.
    """
    while True:
        gc.freeze()
        await asyncio.sleep(period_s)


def raise_open_files_limit() -> int | None:
    """Raise the soft open-files limit to the hard one; return the new limit."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def serve(
    config: ServerConfig,
    tcp: list[tuple[str, int]],
    announce: Callable[[str], None],
    ws: list[tuple[str, int]] | None = None,
    udp: list[tuple[str, int]] | None = None,
) -> None:
    limit = raise_open_files_limit()
    server = ProbeServer(config)
    listening: list[str] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Handlers stay installed through the shutdown, so a second signal does
    # not kill the process halfway through telling its sessions.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        kinds = (("tcp", tcp, server.listen_tcp), ("ws", ws or [], partial(listen_ws, server)))
        for kind, addresses, listen in (*kinds, ("udp", udp or [], server.listen_udp)):
            for host, port in addresses:
                try:
                    bound = await listen(host, port)
                except OSError as exc:
                    raise TargetError(f"cannot listen on {format_address(host, port)}: {exc.strerror or exc}") from None
                listening.append(f"{kind} {format_address(*bound)}")
        # Each session holds one descriptor; keep some for listeners and logs.
        capacity = config.max_sessions if limit is None else min(config.max_sessions, max(0, limit - 32))
        announce(f"natprobe server listening on {', '.join(listening)} (up to {capacity} sessions)")
        freezer = asyncio.create_task(keep_gc_cheap())
        await stop.wait()
        freezer.cancel()
    finally:
        await server.shutdown()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
