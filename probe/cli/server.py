"""``natprobe server``: the cooperating server that pushes after idle periods."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from probe.cli.common import duration, fail, run
from probe.core.targets import DEFAULT_TCP_PORT, DEFAULT_WS_PORT, parse_hostport
from probe.errors import ExitCode, UsageError
from probe.net.server import ServerConfig
from probe.run.serve import serve

EXAMPLES = """
Examples:

  natprobe server --tcp 0.0.0.0:4040

  natprobe server --tcp [::]:4040 --ws 0.0.0.0:8080 --token s3cret

  natprobe server --tcp 0.0.0.0:4040 --udp 0.0.0.0:4040   # UDP probes, TCP control
"""


def command(
    tcp: Annotated[
        list[str] | None,
        typer.Option("--tcp", help="Listen for TCP clients on HOST[:PORT] (port 4040 if none; repeatable)."),
    ] = None,
    ws: Annotated[
        list[str] | None,
        typer.Option("--ws", help="Listen for WebSocket clients on HOST[:PORT] (port 8080 if none; repeatable)."),
    ] = None,
    udp: Annotated[
        list[str] | None,
        typer.Option(
            "--udp", help="Answer UDP probes on HOST[:PORT] (port 4040 if none; repeatable; needs --tcp or --ws)."
        ),
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", envvar="NATPROBE_TOKEN", help="Shared secret clients must send in hello.")
    ] = None,
    max_idle: Annotated[str, typer.Option("--max-idle", help="Longest idle_s a client may ask for.")] = "2h10m",
    max_sessions: Annotated[int, typer.Option("--max-sessions", min=1, help="Sessions open at once.")] = 10_000,
    max_per_ip: Annotated[int, typer.Option("--max-per-ip", min=1, help="Sessions from one address.")] = 256,
    user_timeout: Annotated[
        str,
        typer.Option(
            "--user-timeout", help="Free a session whose pushed data stays unacknowledged this long (TCP_USER_TIMEOUT)."
        ),
    ] = "30s",
) -> None:
    """Run the cooperating server: it pushes to clients after the idle periods they ask for."""
    if not tcp and not ws:
        if udp:
            fail("--udp needs a --tcp or --ws listener too: UDP probes are driven over it", ExitCode.USAGE)
        fail("give at least one --tcp HOST:PORT or --ws HOST:PORT", ExitCode.USAGE)
    try:
        tcp_addrs = [parse_hostport(a, "--tcp address", DEFAULT_TCP_PORT) for a in tcp or []]
        ws_addrs = [parse_hostport(a, "--ws address", DEFAULT_WS_PORT) for a in ws or []]
        udp_addrs = [parse_hostport(a, "--udp address", DEFAULT_TCP_PORT) for a in udp or []]
    except UsageError as exc:
        fail(exc.message, ExitCode.USAGE)
    idle = duration(max_idle, "--max-idle") or 0.0
    logging.basicConfig(level=logging.WARNING, format="natprobe server: %(message)s", stream=sys.stderr)
    config = ServerConfig(
        max_idle_s=idle,
        token=token or None,
        max_sessions=max_sessions,
        max_per_ip=max_per_ip,
        user_timeout_s=duration(user_timeout, "--user-timeout"),
    )

    def announce(line: str) -> None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    run(serve(config, tcp_addrs, announce, ws=ws_addrs, udp=udp_addrs))
