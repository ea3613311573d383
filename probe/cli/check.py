"""``natprobe check``: does a connection idle for DUR survive?"""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from typing import Annotated, NoReturn

import typer

from probe.cli.common import duration, endpoint, fail, heartbeat, keepalive, proxy_for, run
from probe.cli.monitoring import Monitor, Nagios, ProbeName, Textfile
from probe.cli.options import (
    CaCert,
    Header,
    HeartbeatKind,
    HeartbeatMode,
    HeartbeatOpt,
    HeartbeatTimeout,
    Insecure,
    JsonOut,
    KeepaliveCount,
    KeepaliveIdle,
    KeepaliveInterval,
    NoSave,
    ProxyOpt,
    ServerTarget,
    Subprotocol,
    Token,
)
from probe.core.check import CheckResult
from probe.core.targets import Scheme, control_for, parse_target
from probe.errors import ExitCode, UsageError
from probe.render.check import render_check
from probe.render.console import make_console
from probe.render.history import render_history_note
from probe.render.jsonout import dump
from probe.run import history
from probe.run.check import CheckOptions, run_check
from probe.run.check_udp import UdpCheckOptions, run_check_udp


class UdpState(StrEnum):
    unreplied = "unreplied"
    replied = "replied"
    stream = "stream"


EXAMPLES = """
Examples:

  natprobe check tcp://probe.example.net:4040 --idle 5m

  natprobe check tcp://probe.example.net:4040 --idle 10m --keepalive-idle 60 --keepalive-interval 10 --keepalive-count 3

  natprobe check wss://probe.example.net/natprobe --idle 5m --heartbeat 30s --heartbeat-kind ping

  natprobe check udp://probe.example.net:4040 --idle 25s --udp-state unreplied   # WireGuard's 25 s?

  natprobe check tcp://probe.example.net:4040 --idle 2m --nagios          # a Nagios/Icinga plugin

  natprobe check tcp://probe.example.net:4040 --idle 2m --no-save \\
      --textfile /var/lib/node_exporter/textfile/natprobe_short.prom --probe-name short
"""


def command(
    target: ServerTarget,
    idle: Annotated[str, typer.Option("--idle", help="How long the connection stays idle before the push.")],
    udp_state: Annotated[
        UdpState | None,
        typer.Option("--udp-state", help="UDP only: the flow's state before the idle (default replied)."),
    ] = None,
    control: Annotated[
        str | None,
        typer.Option("--control", help="UDP only: the control connection (default tcp://HOST:PORT of the target)."),
    ] = None,
    keepalive_idle: KeepaliveIdle = None,
    keepalive_interval: KeepaliveInterval = None,
    keepalive_count: KeepaliveCount = None,
    heartbeat_every: HeartbeatOpt = None,
    heartbeat_kind: HeartbeatKind = "ping",
    heartbeat_mode: HeartbeatMode = "fixed",
    heartbeat_timeout: HeartbeatTimeout = None,
    header: Header = None,
    subprotocol: Subprotocol = None,
    cacert: CaCert = None,
    insecure: Insecure = False,
    proxy: ProxyOpt = None,
    grace: Annotated[str, typer.Option("--grace", help="How late the push may be.")] = "1s",
    token: Token = None,
    json_out: JsonOut = False,
    no_save: NoSave = False,
    textfile: Textfile = None,
    probe_name: ProbeName = None,
    use_nagios: Nagios = False,
) -> None:
    """Check that one connection idle for --idle still receives the server's push. Exit 0 if so, 1 if not.

    With --heartbeat, it answers instead: do heartbeats at this interval keep the session alive for --idle?
    """
    monitor = Monitor.begin("check", target, textfile, probe_name, use_nagios)
    try:
        parsed = parse_target(target, ("tcp", "udp", "ws", "wss"))
        control_target = control_for(parsed, control)
    except UsageError as exc:
        fail(exc.message, ExitCode.USAGE)
    if control_target is not None:
        tcp_only = [keepalive_idle, keepalive_interval, keepalive_count, heartbeat_every]
        proxy_for(proxy, parsed)  # a usage error for udp:// when given
        if any(value is not None for value in tcp_only):
            fail("--keepalive-* and --heartbeat are for tcp:// and ws:// targets, not udp://", ExitCode.USAGE)
        udp_options = UdpCheckOptions(
            parsed, endpoint(control_target, token, header, subprotocol, cacert, insecure),
            duration(idle, "--idle") or 0.0, (udp_state or UdpState.replied).value,
            grace_s=duration(grace, "--grace") or 1.0,
        )  # fmt: skip
        finish(run(run_check_udp(udp_options), on_error=monitor.failed), monitor, no_save, json_out)
    if udp_state is not None:
        fail("--udp-state is for udp:// targets only", ExitCode.USAGE)
    beat = heartbeat(heartbeat_every, heartbeat_kind, heartbeat_mode, heartbeat_timeout)
    if beat is not None and beat.kind == "ping" and parsed.scheme is Scheme.TCP:
        fail("--heartbeat-kind ping needs a ws:// or wss:// target; use --heartbeat-kind message", ExitCode.USAGE)
    options = CheckOptions(
        endpoint=endpoint(parsed, token, header, subprotocol, cacert, insecure, proxy),
        idle_s=duration(idle, "--idle") or 0.0,
        keepalive=keepalive(keepalive_idle, keepalive_interval, keepalive_count),
        grace_s=duration(grace, "--grace") or 1.0,
        heartbeat=beat,
    )
    finish(run(run_check(options), on_error=monitor.failed), monitor, no_save, json_out)


def finish(result: CheckResult, monitor: Monitor, no_save: bool, json_out: bool) -> NoReturn:
    """Save, report and exit 0 (passed) or 1."""
    if not no_save:
        result = replace(result, history=history.record(result))
    monitor.done(result)
    if json_out:
        dump(result.to_json())
    else:
        console = make_console()
        render_check(result, console)
        render_history_note(result.history, console)
    raise typer.Exit(ExitCode.OK if result.passed else ExitCode.FAILED)
