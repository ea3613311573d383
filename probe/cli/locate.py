"""``natprobe locate``: which hop's state times out."""

from __future__ import annotations

from typing import Annotated

import typer

from probe.cli.common import duration, endpoint, fail, run
from probe.cli.options import CaCert, Header, Insecure, JsonOut, ProxyOpt, Subprotocol, Token
from probe.core.targets import parse_target
from probe.errors import ExitCode, UsageError
from probe.render.console import make_console
from probe.render.facts import render_locate
from probe.render.jsonout import dump
from probe.run.locate import LocateOptions, run_locate

EXAMPLES = """
Examples:

  natprobe locate tcp://probe.example.net:4040                 # discovers the timeout first

  natprobe locate tcp://probe.example.net:4040 --timeout 2m --json

  natprobe locate wss://probe.example.net/natprobe --timeout 5m --max-hops 20
"""


def command(
    target: Annotated[
        str,
        typer.Argument(help="tcp://HOST[:PORT] or ws(s)://HOST[:PORT]/PATH of a natprobe server."),
    ],
    timeout: Annotated[
        str | None, typer.Option("--timeout", help="The path's idle timeout, if known (else discover finds it).")
    ] = None,
    max_hops: Annotated[int, typer.Option("--max-hops", min=1, max=64, help="Give up beyond this many hops.")] = 16,
    token: Token = None,
    json_out: JsonOut = False,
    header: Header = None,
    subprotocol: Subprotocol = None,
    cacert: CaCert = None,
    insecure: Insecure = False,
    proxy: ProxyOpt = None,
) -> None:
    """Find the hop whose state forgets idle flows: your router, a carrier NAT, or the far end."""
    try:
        parsed = parse_target(target)
    except UsageError as exc:
        fail(exc.message, ExitCode.USAGE)
    if proxy is not None:
        fail(
            "locate cannot work through a proxy: the TTL of its probes ends at the proxy, which answers them; "
            "run it where the proxy is, or without --proxy",
            ExitCode.USAGE,
        )
    options = LocateOptions(
        endpoint(parsed, token, header, subprotocol, cacert, insecure),
        timeout_s=duration(timeout, "--timeout"),
        max_hops=max_hops,
    )
    result = run(run_locate(options))
    if json_out:
        dump(result.to_json())
    else:
        render_locate(result, make_console())
    raise typer.Exit(ExitCode.OK if result.expiring_hop is not None else ExitCode.FAILED)
