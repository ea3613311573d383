"""``natprobe demo``: the whole job on loopback, with nothing to set up."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer

from probe.cli.common import duration, fail, run
from probe.errors import ExitCode
from probe.lab.emulator import MODES
from probe.render import stream
from probe.render.console import make_console
from probe.render.discover import render_discover
from probe.render.hung import render_hung_server
from probe.render.jsonout import dump
from probe.render.live import run_with_live
from probe.run.demo import HUNG_KEEPALIVE, run_demo, run_hung_server

EXAMPLES = """
Examples:

  natprobe demo

  natprobe demo --nat-timeout 20s --mode close --json

  natprobe demo --hung-server            # kernel keepalive against a heartbeat, on a hung server
"""


def command(
    nat_timeout: Annotated[str, typer.Option("--nat-timeout", help="The emulated NAT's idle timeout.")] = "10s",
    mode: Annotated[str, typer.Option("--mode", help="How the emulated NAT forgets: drop | reset | close")] = "drop",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    ndjson: Annotated[
        bool, typer.Option("--ndjson", help="Stream one JSON event per line; the result is the last line.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")] = False,
    hung_server: Annotated[
        bool,
        typer.Option(
            "--hung-server",
            help="Instead: a server whose application hangs after its welcome, watched by kernel keepalive "
            "and by a heartbeat.",
        ),
    ] = False,
    wait: Annotated[str, typer.Option("--wait", help="--hung-server: how long the keepalive connection waits.")] = "8s",
) -> None:
    """Start a server and an emulated NAT on loopback, discover the NAT's timeout, compare with the truth."""
    if hung_server:
        hung(wait, json_out, ndjson)
    if mode not in MODES:
        fail(f"--mode must be one of {', '.join(MODES)}, not {mode!r}", ExitCode.USAGE)
    timeout = duration(nat_timeout, "--nat-timeout") or 0.0
    if json_out and ndjson:
        fail("--json and --ndjson cannot be combined", ExitCode.USAGE)
    console = make_console()
    live = not (json_out or ndjson or quiet) and console.is_terminal
    observer = stream.ndjson if ndjson else (None if quiet or json_out or live else stream.progress)
    drive = (lambda runner: run_with_live(runner, console)) if live else None
    found = run(run_demo(timeout, mode, observer=observer, drive=drive))
    result = found.to_json()
    if ndjson:
        stream.ndjson({"event": "result", **result}, final=True)
    elif json_out:
        dump(result)
    else:
        render_discover(found.discover, console, truth_s=timeout)
    if result["interrupted"]:
        raise typer.Exit(ExitCode.INTERRUPTED)


#: The demo's heartbeat: every second, an answer due within two.
HUNG_INTERVAL_S, HUNG_TIMEOUT_S = 1.0, 2.0


def hung(wait: str, json_out: bool, ndjson: bool) -> NoReturn:
    if ndjson:
        fail("--hung-server streams no events; use --json", ExitCode.USAGE)
    wait_s = duration(wait, "--wait") or 0.0
    # Keepalive must have had the time to notice a dead peer, the heartbeat its time to notice.
    least = max(HUNG_INTERVAL_S + HUNG_TIMEOUT_S, HUNG_KEEPALIVE.dead_peer_s or 0.0)
    if wait_s <= least:
        fail(f"--wait must be longer than {least:g}s, the time keepalive takes to notice a dead peer", ExitCode.USAGE)
    result = run(run_hung_server(wait_s, HUNG_INTERVAL_S, HUNG_TIMEOUT_S))
    if json_out:
        dump(result.to_json())
    else:
        render_hung_server(result, make_console())
    raise typer.Exit(ExitCode.OK)
