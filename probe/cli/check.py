"""``natprobe check``: does a connection idle for DUR survive?"""

from __future__ import annotations

from typing import Annotated

import typer

from probe.cli.common import duration, fail, keepalive, run
from probe.core.targets import parse_target
from probe.errors import ExitCode, UsageError
from probe.render.console import make_console, render_check
from probe.render.jsonout import dump
from probe.run.check import CheckOptions, run_check

EXAMPLES = """
Examples:

  natprobe check tcp://probe.example.net:4040 --idle 5m

  natprobe check tcp://probe.example.net:4040 --idle 10m --keepalive-idle 60 --keepalive-interval 10 --keepalive-count 3
"""


def command(
    target: Annotated[str, typer.Argument(help="tcp://HOST:PORT of a natprobe server.")],
    idle: Annotated[str, typer.Option("--idle", help="How long the connection stays idle before the push.")],
    keepalive_idle: Annotated[str | None, typer.Option("--keepalive-idle", help="TCP keepalive idle time.")] = None,
    keepalive_interval: Annotated[
        str | None, typer.Option("--keepalive-interval", help="TCP keepalive probe interval.")
    ] = None,
    keepalive_count: Annotated[
        int | None, typer.Option("--keepalive-count", help="TCP keepalive probes before giving up.")
    ] = None,
    grace: Annotated[str, typer.Option("--grace", help="How late the push may be.")] = "1s",
    token: Annotated[
        str | None, typer.Option("--token", envvar="NATPROBE_TOKEN", help="Server's shared secret.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Check that one connection idle for --idle still receives the server's push. Exit 0 if so, 1 if not."""
    try:
        parsed = parse_target(target, schemes=("tcp",))
    except UsageError as exc:
        fail(exc.message, ExitCode.USAGE)
    options = CheckOptions(
        target=parsed,
        idle_s=duration(idle, "--idle") or 0.0,
        keepalive=keepalive(keepalive_idle, keepalive_interval, keepalive_count),
        grace_s=duration(grace, "--grace") or 1.0,
        token=token,
    )
    result = run(run_check(options)).to_json()
    if json_out:
        dump(result)
    else:
        render_check(result, make_console())
    raise typer.Exit(ExitCode.OK if result["passed"] else ExitCode.FAILED)


command.__doc__ = (command.__doc__ or "") + EXAMPLES
