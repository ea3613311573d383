"""``natprobe survey``: several paths to natprobe servers, side by side, at once."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from probe.cli.common import discovered_targets, duration, endpoint, fail, planner_config, run
from probe.cli.options import (
    Budget,
    CaCert,
    DiscoverGrace,
    ExpectMin,
    Header,
    Insecure,
    MaxIdle,
    NdJson,
    NoSave,
    Parallel,
    ProxyOpt,
    Quiet,
    Resolution,
    Subprotocol,
    Token,
)
from probe.core.text import printable
from probe.errors import ExitCode
from probe.render import stream
from probe.render.console import make_console
from probe.render.jsonout import dump
from probe.render.survey import render_survey
from probe.run import history
from probe.run.survey import FAMILIES, SurveyOptions, run_survey

EXAMPLES = """
Examples:

  natprobe survey tcp://probe.example.net:4040 tcp://probe.example.net:443   # two ports

  natprobe survey tcp://probe.example.net:4040 --family both --json   # IPv4 and IPv6, one path each

  natprobe survey tcp://probe.example.net wss://probe.example.net/natprobe udp://probe.example.net
"""


def command(
    targets: Annotated[
        list[str],
        typer.Argument(
            help="Targets as discover takes them: tcp://HOST[:PORT], udp://HOST[:PORT] or ws(s)://HOST[:PORT]/PATH.",
        ),
    ],
    family: Annotated[
        str,
        typer.Option(
            "--family", help="4, 6 or both: a host name with A and AAAA records is one path per family (both)."
        ),
    ] = "both",
    max_idle: MaxIdle = "2h10m",
    resolution: Resolution = None,
    budget: Budget = None,
    expect_min: ExpectMin = None,
    parallel: Parallel = None,
    grace: DiscoverGrace = None,
    token: Token = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object (natprobe.survey/1) on stdout.")] = False,
    ndjson: NdJson = False,
    quiet: Quiet = False,
    header: Header = None,
    subprotocol: Subprotocol = None,
    cacert: CaCert = None,
    insecure: Insecure = False,
    proxy: ProxyOpt = None,
    no_save: NoSave = False,
) -> None:
    """Discover several paths at once (ports, IPv4 and IPv6, transports) and compare them."""
    if family not in FAMILIES:
        fail(f"--family: {family!r} is not 4, 6 or both", ExitCode.USAGE)
    parsed = discovered_targets(targets, parallel, json_out, ndjson)
    config = planner_config(max_idle, resolution, budget, expect_min)
    reaches = tuple(endpoint(t, token, header, subprotocol, cacert, insecure, proxy) for t in parsed)
    options = SurveyOptions(reaches, config, family=family, grace_s=duration(grace, "--grace"), parallel=parallel)
    observer = stream.ndjson if ndjson else (None if quiet or json_out else stream.survey_progress)
    survey = run(run_survey(options, observer))
    saved = 0
    if not no_save and not survey.interrupted:
        # Each measured path is a discovery in the history, under its own
        # path key (the address the server saw tells IPv4 from IPv6).
        for path in survey.paths:
            if path.result is not None and history.record(path.result).saved:
                saved += 1
    if ndjson:
        stream.ndjson({"event": "result", **survey.to_json()}, final=True)
    elif json_out:
        dump(survey.to_json())
    else:
        console = make_console()
        render_survey(survey, console)
        if saved:
            console.print(f"  Saved {saved} path{'' if saved == 1 else 's'} to the history (natprobe history).")
    for index, path in enumerate(survey.paths, 1):
        if path.error is not None:
            # Every error is one line on stderr, as for discover: here one per
            # path that gave no result, after what the others measured.
            sys.stderr.write(f"natprobe: path {index} ({path.target}): {printable(path.error.message, 500)}\n")
    code = survey.exit_code(config.expect_min_s)
    if code != ExitCode.OK:
        raise typer.Exit(code)
