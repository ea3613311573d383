"""``natprobe check``: does a connection idle for DUR survive?"""

from __future__ import annotations

from typing import Annotated

import typer

from probe.cli.common import duration, fail, heartbeat, keepalive, run, ws_options
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
    Subprotocol,
    Token,
)
from probe.core.targets import parse_target
from probe.errors import ExitCode, UsageError
from probe.render.console import make_console, render_check, render_history_note
from probe.render.jsonout import dump
from probe.run import history
from probe.run.check import CheckOptions, run_check

EXAMPLES = """
Examples:

  natprobe check tcp://probe.example.net:4040 --idle 5m

  natprobe check tcp://probe.example.net:4040 --idle 10m --keepalive-idle 60 --keepalive-interval 10 --keepalive-count 3

  natprobe check wss://probe.example.net/natprobe --idle 5m --heartbeat 30s --heartbeat-kind ping

  natprobe check tcp://probe.example.net:4040 --idle 2m --nagios          # a Nagios/Icinga plugin

  natprobe check tcp://probe.example.net:4040 --idle 2m --no-save \\
      --textfile /var/lib/node_exporter/textfile/natprobe_short.prom --probe-name short
"""


def command(
    target: Annotated[
        str,
        typer.Argument(help="tcp://HOST[:PORT] (port 4040 if none) or ws(s)://HOST[:PORT]/PATH of a natprobe server."),
    ],
    idle: Annotated[str, typer.Option("--idle", help="How long the connection stays idle before the push.")],
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
        parsed = parse_target(target)
    except UsageError as exc:
        fail(exc.message, ExitCode.USAGE)
    beat = heartbeat(heartbeat_every, heartbeat_kind, heartbeat_mode, heartbeat_timeout)
    if beat is not None and beat.kind == "ping" and parsed.scheme == "tcp":
        fail("--heartbeat-kind ping needs a ws:// or wss:// target; use --heartbeat-kind message", ExitCode.USAGE)
    options = CheckOptions(
        target=parsed,
        idle_s=duration(idle, "--idle") or 0.0,
        keepalive=keepalive(keepalive_idle, keepalive_interval, keepalive_count),
        grace_s=duration(grace, "--grace") or 1.0,
        token=token,
        ws=ws_options(header, subprotocol, cacert, insecure),
        heartbeat=beat,
    )
    result = run(run_check(options), on_error=monitor.failed).to_json()
    if not no_save:
        result["history"] = history.record("check", result)
    monitor.done(result)
    if json_out:
        dump(result)
    else:
        console = make_console()
        render_check(result, console)
        render_history_note(result.get("history"), console)
    raise typer.Exit(ExitCode.OK if result["passed"] else ExitCode.FAILED)
