"""``natprobe discover``: find the path's idle timeout with server pushes."""

from __future__ import annotations

from typing import Annotated

import typer

from probe.cli.common import discovered_targets, duration, endpoint, fail, planner_config, run
from probe.cli.monitoring import Monitor, Nagios, ProbeName, Textfile
from probe.cli.options import (
    Budget,
    CaCert,
    DiscoverGrace,
    ExpectMin,
    Header,
    Insecure,
    JsonOut,
    MaxIdle,
    NdJson,
    NoSave,
    Parallel,
    ProxyOpt,
    Quiet,
    Resolution,
    ServerTarget,
    Subprotocol,
    Token,
)
from probe.core.designs import confirm_time_s
from probe.core.durations import format_duration
from probe.core.planner import PlannerConfig
from probe.core.results import DiscoverResult
from probe.core.targets import Scheme, Target, control_for
from probe.errors import ExitCode, UsageError
from probe.render import stream
from probe.render.console import make_console
from probe.render.discover import render_discover
from probe.render.history import render_history_note
from probe.render.jsonout import dump
from probe.render.live import run_with_live
from probe.run import history
from probe.run.jobs import DiscoverJob, discovery

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
    target: ServerTarget,
    control: Annotated[
        str | None,
        typer.Option("--control", help="UDP only: the control connection (default tcp://HOST:PORT of the target)."),
    ] = None,
    max_idle: MaxIdle = "2h10m",
    resolution: Resolution = None,
    budget: Budget = None,
    expect_min: ExpectMin = None,
    parallel: Parallel = None,
    grace: DiscoverGrace = None,
    token: Token = None,
    json_out: JsonOut = False,
    ndjson: NdJson = False,
    quiet: Quiet = False,
    header: Header = None,
    subprotocol: Subprotocol = None,
    cacert: CaCert = None,
    insecure: Insecure = False,
    proxy: ProxyOpt = None,
    no_save: NoSave = False,
    textfile: Textfile = None,
    probe_name: ProbeName = None,
    use_nagios: Nagios = False,
    confirm: Annotated[
        bool,
        typer.Option(
            "--confirm",
            help="Then hold each design that kept the flow at the recommended interval for 1.5 x the bound "
            "(costs 1.5 T more).",
        ),
    ] = False,
) -> None:
    """Find how long an idle connection survives on the path to a natprobe server."""
    monitor = Monitor.begin("discover", target, textfile, probe_name, use_nagios)
    (parsed,) = discovered_targets([target], parallel, json_out, ndjson)
    try:
        control_target = control_for(parsed, control)
    except UsageError as exc:
        fail(exc.message, ExitCode.USAGE)
    config = planner_config(max_idle, resolution, budget, expect_min)
    if confirm:
        confirm_fits(parsed, config)
    console = make_console()
    live = not (json_out or ndjson or quiet or use_nagios) and console.is_terminal
    silent = quiet or json_out or use_nagios
    observer = stream.ndjson if ndjson else (None if silent or live else stream.progress)
    reach = endpoint(parsed, token, header, subprotocol, cacert, insecure, proxy)
    control_reach = None if control_target is None else reach.to(control_target)
    job = DiscoverJob(
        reach, config, grace_s=duration(grace, "--grace"), control=control_reach, parallel=parallel, confirm=confirm
    )
    runner = discovery(job, observer=observer)
    running = run_with_live(runner, console) if live else runner.run()
    found: DiscoverResult = run(running, on_error=monitor.failed)
    if not no_save and not found.interrupted:
        found.history = history.record(found)
    if not found.interrupted:
        monitor.done(found, config.expect_min_s)
    if ndjson:
        stream.ndjson({"event": "result", **found.to_json()}, final=True)
    elif json_out:
        dump(found.to_json())
    else:
        render_discover(found, console)
        render_history_note(found.history, console)
    if found.interrupted:
        raise typer.Exit(ExitCode.INTERRUPTED)
    upper = found.summary().upper_s
    if config.expect_min_s is not None and upper is not None and upper < config.expect_min_s:
        raise typer.Exit(ExitCode.FAILED)


def confirm_fits(target: Target, config: PlannerConfig) -> None:
    """``--confirm`` is for tcp:// and ws(s)://, within a budget that leaves room for it."""
    if target.scheme is Scheme.UDP:
        fail("--confirm is for tcp:// and ws(s):// targets", ExitCode.USAGE)
    budget = config.budget_s
    need = confirm_time_s(config.max_idle_s)
    if budget is not None and budget < need:
        fail(
            f"--confirm: a timeout up to --max-idle {format_duration(config.max_idle_s)} needs up to "
            f"{format_duration(need)} to bracket and confirm, longer than --budget {format_duration(budget)}; "
            "raise --budget or lower --max-idle",
            ExitCode.USAGE,
        )
