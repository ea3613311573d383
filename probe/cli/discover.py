"""``natprobe discover``: find the path's idle timeout with server pushes."""

from __future__ import annotations

from typing import Annotated

import typer

from probe.cli.common import duration, endpoint, fail, run
from probe.cli.monitoring import Monitor, Nagios, ProbeName, Textfile
from probe.cli.options import CaCert, Header, Insecure, NoSave, ProxyOpt, Subprotocol
from probe.core.planner import PlannerConfig
from probe.core.targets import control_for, parse_target
from probe.errors import ExitCode, UsageError
from probe.render import stream
from probe.render.console import make_console, render_discover, render_history_note
from probe.render.jsonout import dump
from probe.render.live import run_with_live
from probe.run import history
from probe.run.discover import DiscoverOptions, DiscoverRun
from probe.run.discover_udp import UdpDiscoverOptions, UdpDiscoverRun

EXAMPLES = """
Examples:

  natprobe discover tcp://probe.example.net:4040

  natprobe discover tcp://probe.example.net:4040 --max-idle 30m --json

  natprobe discover wss://probe.example.net/natprobe

  natprobe discover udp://probe.example.net:4040   # UDP flow states; control over tcp://...:4040

  natprobe discover tcp://10.0.0.5:4040 --expect-min 5m   # exit 1 if the path forgets flows sooner

  natprobe discover tcp://10.0.0.5:4040 --expect-min 5m --nagios   # CRITICAL (2) if it does
"""


def command(
    target: Annotated[
        str,
        typer.Argument(
            help="tcp://HOST[:PORT] (port 4040 if none), udp://HOST[:PORT] or ws(s)://HOST[:PORT]/PATH "
            "of a natprobe server."
        ),
    ],
    control: Annotated[
        str | None,
        typer.Option("--control", help="UDP only: the control connection (default tcp://HOST:PORT of the target)."),
    ] = None,
    max_idle: Annotated[str, typer.Option("--max-idle", help="Longest idle to test.")] = "2h10m",
    resolution: Annotated[
        str | None, typer.Option("--resolution", help="Bracket width wanted (default: 2% of T, at least 0.5s).")
    ] = None,
    budget: Annotated[str | None, typer.Option("--budget", help="Stop after this long with the best bracket.")] = None,
    expect_min: Annotated[
        str | None, typer.Option("--expect-min", help="Exit 1 as soon as the path is proven to forget flows sooner.")
    ] = None,
    parallel: Annotated[int, typer.Option("--parallel", min=3, max=4096, help="Connections open at once.")] = 64,
    grace: Annotated[
        str | None,
        typer.Option("--grace", help="Wait this long for a push before calling it lost (default: from RTT)."),
    ] = None,
    token: Annotated[
        str | None, typer.Option("--token", envvar="NATPROBE_TOKEN", help="Server's shared secret.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    ndjson: Annotated[
        bool, typer.Option("--ndjson", help="Stream one JSON event per line; the result is the last line.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")] = False,
    header: Header = None,
    subprotocol: Subprotocol = None,
    cacert: CaCert = None,
    insecure: Insecure = False,
    proxy: ProxyOpt = None,
    no_save: NoSave = False,
    textfile: Textfile = None,
    probe_name: ProbeName = None,
    use_nagios: Nagios = False,
) -> None:
    """Find how long an idle connection survives on the path to a natprobe server."""
    monitor = Monitor.begin("discover", target, textfile, probe_name, use_nagios)
    try:
        parsed = parse_target(target, ("tcp", "udp", "ws", "wss"))
        control_target = control_for(parsed, control)
    except UsageError as exc:
        fail(exc.message, ExitCode.USAGE)
    config = PlannerConfig(
        max_idle_s=duration(max_idle, "--max-idle") or 0.0,
        resolution_s=duration(resolution, "--resolution"),
        budget_s=duration(budget, "--budget"),
        expect_min_s=duration(expect_min, "--expect-min"),
        max_conns=parallel - 1,  # one is the control connection
    )
    if json_out and ndjson:
        fail("--json and --ndjson cannot be combined", ExitCode.USAGE)
    console = make_console()
    live = not (json_out or ndjson or quiet or use_nagios) and console.is_terminal
    silent = quiet or json_out or use_nagios
    observer = stream.ndjson if ndjson else (None if silent or live else stream.progress)
    reach = endpoint(parsed, token, header, subprotocol, cacert, insecure, proxy)
    options = DiscoverOptions(reach, config, grace_s=duration(grace, "--grace"))
    if control_target is not None:
        udp = UdpDiscoverOptions(parsed, reach.to(control_target), config, grace_s=options.grace_s)
        udp_runner = UdpDiscoverRun(udp, observer=observer)
        job = run_with_live(udp_runner, console) if live else udp_runner.run()
    else:
        runner = DiscoverRun(options, observer=observer)
        job = run_with_live(runner, console) if live else runner.run()
    result = run(job, on_error=monitor.failed).to_json()
    if not no_save and not result["interrupted"]:
        result["history"] = history.record("discover", result)
    if not result["interrupted"]:
        monitor.done(result, config.expect_min_s)
    if ndjson:
        stream.ndjson({"event": "result", **result}, final=True)
    elif json_out:
        dump(result)
    else:
        render_discover(result, console)
        render_history_note(result.get("history"), console)
    if result["interrupted"]:
        raise typer.Exit(ExitCode.INTERRUPTED)
    if config.expect_min_s is not None and result["upper_s"] is not None and result["upper_s"] < config.expect_min_s:
        raise typer.Exit(ExitCode.FAILED)
