"""``natprobe hold``: hold one connection to any TCP or WebSocket server and see how it ends."""

from __future__ import annotations

from typing import Annotated

import typer

from probe.cli import options as opt
from probe.cli.common import duration, endpoint, fail, heartbeat, keepalive, run
from probe.core.hold import HoldResult
from probe.core.targets import Scheme, parse_target
from probe.errors import ExitCode, UsageError
from probe.render.check import render_hold
from probe.render.console import make_console
from probe.render.jsonout import dump
from probe.run.hold import HoldOptions, run_hold
from probe.run.hold_ws import WsHoldOptions, run_hold_ws

EXAMPLES = """
Examples:

  natprobe hold db.internal:5432 --duration 30m

  natprobe hold 10.0.0.7:22 --keepalive-idle 60 --keepalive-interval 10 --keepalive-count 3 --json

  natprobe hold wss://chat.example.com/socket --heartbeat 25s --header 'Authorization: Bearer T' --duration 10m
"""


def command(
    target: Annotated[str, typer.Argument(help="HOST:PORT, tcp://HOST:PORT or ws(s)://HOST:PORT/PATH of any server.")],
    keepalive_idle: opt.KeepaliveIdle = None,
    keepalive_interval: opt.KeepaliveInterval = None,
    keepalive_count: opt.KeepaliveCount = None,
    user_timeout: Annotated[
        str | None,
        typer.Option("--user-timeout", help="TCP_USER_TIMEOUT: give up when sent data stays unacknowledged."),
    ] = None,
    heartbeat_every: opt.HeartbeatOpt = None,
    heartbeat_kind: opt.HeartbeatKind = "ping",
    heartbeat_mode: opt.HeartbeatMode = "fixed",
    heartbeat_message: Annotated[
        str, typer.Option("--heartbeat-message", help="Text sent as a heartbeat with --heartbeat-kind message.")
    ] = "ping",
    heartbeat_timeout: opt.HeartbeatTimeout = None,
    header: opt.Header = None,
    subprotocol: opt.Subprotocol = None,
    cacert: opt.CaCert = None,
    insecure: opt.Insecure = False,
    proxy: opt.ProxyOpt = None,
    repeat: Annotated[
        int, typer.Option("--repeat", min=1, max=100, help="WebSocket: hold this many sessions one after another.")
    ] = 1,
    duration_opt: Annotated[str, typer.Option("--duration", help="How long to hold the connection.")] = "10m",
    json_out: opt.JsonOut = False,
) -> None:
    """Hold one connection with the given settings; report how long it lived and how it ended.

    Exit 0 if it lasted --duration, 1 if it died.
    """
    try:
        parsed = parse_target(target, default="tcp")
    except UsageError as exc:
        fail(exc.message, ExitCode.USAGE)
    seconds = duration(duration_opt, "--duration") or 0.0
    result: HoldResult
    if parsed.scheme is Scheme.TCP:
        if heartbeat_every is not None:
            fail("--heartbeat needs a ws:// or wss:// target; for TCP use --keepalive-idle", ExitCode.USAGE)
        options = HoldOptions(
            endpoint=endpoint(parsed, proxy=proxy),
            duration_s=seconds,
            keepalive=keepalive(keepalive_idle, keepalive_interval, keepalive_count, user_timeout),
        )
        result = run(run_hold(options))
    else:
        if keepalive_idle or keepalive_interval or keepalive_count or user_timeout:
            fail("keepalive options apply to TCP targets; for WebSocket use --heartbeat", ExitCode.USAGE)
        ws_opts = WsHoldOptions(
            endpoint=endpoint(parsed, None, header, subprotocol, cacert, insecure, proxy),
            duration_s=seconds,
            heartbeat=heartbeat(heartbeat_every, heartbeat_kind, heartbeat_mode, heartbeat_timeout),
            heartbeat_message=heartbeat_message,
            repeat=repeat,
        )
        result = run(run_hold_ws(ws_opts))
    if json_out:
        dump(result.to_json())
    else:
        render_hold(result, make_console())
    raise typer.Exit(ExitCode.OK if result.lasted else ExitCode.FAILED)
