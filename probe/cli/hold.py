"""``natprobe hold``: hold one connection to any TCP server and see how it ends."""

from __future__ import annotations

from typing import Annotated

import typer

from probe.cli.common import duration, fail, keepalive, run
from probe.core.targets import parse_target
from probe.errors import ExitCode, UsageError
from probe.render.console import make_console, render_hold
from probe.render.jsonout import dump
from probe.run.hold import HoldOptions, run_hold

EXAMPLES = """
Examples:

  natprobe hold db.internal:5432 --duration 30m

  natprobe hold 10.0.0.7:22 --keepalive-idle 60 --keepalive-interval 10 --keepalive-count 3 --json
"""


def command(
    target: Annotated[str, typer.Argument(help="HOST:PORT (or tcp://HOST:PORT) of any TCP server.")],
    keepalive_idle: Annotated[str | None, typer.Option("--keepalive-idle", help="TCP keepalive idle time.")] = None,
    keepalive_interval: Annotated[
        str | None, typer.Option("--keepalive-interval", help="TCP keepalive probe interval.")
    ] = None,
    keepalive_count: Annotated[
        int | None, typer.Option("--keepalive-count", help="TCP keepalive probes before giving up.")
    ] = None,
    user_timeout: Annotated[
        str | None,
        typer.Option("--user-timeout", help="TCP_USER_TIMEOUT: give up when sent data stays unacknowledged."),
    ] = None,
    duration_opt: Annotated[str, typer.Option("--duration", help="How long to hold the connection.")] = "10m",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Hold one idle connection with the given settings; report how long it lived and how it ended.

    Exit 0 if it lasted --duration, 1 if it died.
    """
    try:
        parsed = parse_target(target, schemes=("tcp",), default="tcp")
    except UsageError as exc:
        fail(exc.message, ExitCode.USAGE)
    options = HoldOptions(
        host=parsed.host,
        port=parsed.port,
        duration_s=duration(duration_opt, "--duration") or 0.0,
        keepalive=keepalive(keepalive_idle, keepalive_interval, keepalive_count, user_timeout),
    )
    result = run(run_hold(options)).to_json()
    if json_out:
        dump(result)
    else:
        render_hold(result, make_console())
    raise typer.Exit(ExitCode.OK if result["lasted"] else ExitCode.FAILED)


command.__doc__ = (command.__doc__ or "") + EXAMPLES
