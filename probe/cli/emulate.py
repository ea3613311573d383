"""``natprobe emulate``: a userspace middlebox that forgets idle flows."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Annotated

import typer

from probe.cli.common import duration, fail, run
from probe.core.targets import format_address, parse_hostport
from probe.errors import ExitCode, TargetError, UsageError
from probe.lab.emulator import MODES, Emulator

EXAMPLES = """
Examples:

  natprobe emulate --listen 127.0.0.1:5000 --upstream 127.0.0.1:4040 --idle-timeout 30s

  natprobe emulate --listen 127.0.0.1:5000 --upstream 127.0.0.1:4040 --idle-timeout 60 --mode close

Limits: it terminates TCP on both sides, so kernel keepalive probes never cross it;
use a kernel NAT (see docs/lab.md) to judge keepalive settings.
"""


def command(
    listen: Annotated[str, typer.Option("--listen", help="HOST:PORT to accept clients on.")],
    upstream: Annotated[str, typer.Option("--upstream", help="HOST:PORT to relay to.")],
    idle_timeout: Annotated[str, typer.Option("--idle-timeout", help="Forget a flow idle this long.")],
    mode: Annotated[str, typer.Option("--mode", help="drop | reset | close")] = "drop",
) -> None:
    """Relay TCP and forget a flow once it has been idle longer than --idle-timeout."""
    if mode not in MODES:
        fail(f"--mode must be one of {', '.join(MODES)}, not {mode!r}", ExitCode.USAGE)
    try:
        listen_addr = parse_hostport(listen, "--listen address")
        upstream_addr = parse_hostport(upstream, "--upstream address")
    except UsageError as exc:
        fail(exc.message, ExitCode.USAGE)
    timeout = duration(idle_timeout, "--idle-timeout") or 0.0
    run(_serve(listen_addr, upstream_addr, timeout, mode))


async def _serve(listen: tuple[str, int], upstream: tuple[str, int], idle_timeout_s: float, mode: str) -> None:
    emulator = Emulator(upstream, idle_timeout_s, mode)
    try:
        bound = await emulator.listen(*listen)
    except OSError as exc:
        raise TargetError(f"cannot listen on {format_address(*listen)}: {exc.strerror or exc}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    sys.stderr.write(
        f"natprobe emulate listening on {format_address(*bound)} -> {format_address(*upstream)}, "
        f"forgetting flows idle {idle_timeout_s:g}s ({mode})\n"
    )
    sys.stderr.flush()
    try:
        await stop.wait()
    finally:
        await emulator.close()
