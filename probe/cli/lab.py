"""``natprobe lab``: a real kernel NAT on this machine to test applications against."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Annotated

import typer

from probe.cli.common import duration, fail
from probe.errors import ExitCode
from probe.lab.netns import (
    CLIENT_IP,
    ROUTER_INSIDE_IP,
    ROUTER_OUTSIDE_IP,
    SERVER_IP,
    LabUnavailable,
    nat_lab,
    unavailable_reason,
)

EXAMPLES = """
Examples:

  sudo natprobe lab --nat-timeout 30s

  sudo natprobe lab --nat-timeout 2m --loose   # NAT re-creates mappings for mid-stream packets

  sudo natprobe lab --nat-timeout 5m --udp-timeout 15s --udp-stream-timeout 5m   # a carrier NAT's UDP timers

Then, in other terminals, run your server and client inside the namespaces it prints,
e.g. `ip netns exec <server-ns> myserver --listen 198.19.0.2:8080`.
"""


def command(
    nat_timeout: Annotated[str, typer.Option("--nat-timeout", help="conntrack timeout for established TCP flows.")],
    loose: Annotated[
        bool, typer.Option("--loose", help="Let the NAT pick up mid-stream packets (nf_conntrack_tcp_loose=1).")
    ] = False,
    random_ports: Annotated[
        bool, typer.Option("--random-ports", help="Masquerade fully-random: a re-created flow gets a new port.")
    ] = False,
    silent_router: Annotated[
        bool,
        typer.Option(
            "--silent-router", help="Drop server packets for forgotten flows instead of answering them with RST."
        ),
    ] = False,
    udp_timeout: Annotated[
        str, typer.Option("--udp-timeout", help="conntrack timeout for UDP flows not yet a stream.")
    ] = "30s",
    udp_stream_timeout: Annotated[
        str, typer.Option("--udp-stream-timeout", help="conntrack timeout for UDP streams (replied, 2 s on).")
    ] = "120s",
) -> None:
    """Build client, router and server network namespaces joined by a kernel NAT; remove them on Ctrl-C."""
    seconds = whole_seconds(nat_timeout, "--nat-timeout")
    udp = (whole_seconds(udp_timeout, "--udp-timeout"), whole_seconds(udp_stream_timeout, "--udp-stream-timeout"))
    reason = unavailable_reason()
    if reason is not None:
        fail(reason, ExitCode.UNREACHABLE)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        with nat_lab(seconds, loose=loose, random_ports=random_ports, router_rst=not silent_router, udp=udp) as lab:
            sys.stdout.write(
                f"client namespace {lab.client}: {CLIENT_IP} (default route via {ROUTER_INSIDE_IP})\n"
                f"router namespace {lab.router}: {ROUTER_INSIDE_IP} | {ROUTER_OUTSIDE_IP}, masquerade, "
                f"TCP established timeout {seconds}s, UDP {udp[0]}s / stream {udp[1]}s, "
                f"mid-stream pickup {'on' if loose else 'off'}, "
                f"{'random' if random_ports else 'preserved'} ports, forgotten flows "
                f"{'dropped silently' if silent_router else 'answered with RST'}\n"
                f"server namespace {lab.server}: {SERVER_IP}\n"
                f"run programs with: ip netns exec NAMESPACE COMMAND; Ctrl-C removes the lab\n"
            )
            sys.stdout.flush()
            stop.wait()
    except LabUnavailable as exc:
        fail(str(exc), ExitCode.UNREACHABLE)


def whole_seconds(text: str, option: str) -> int:
    seconds = duration(text, option) or 0.0
    if seconds < 1 or seconds != int(seconds):
        fail(f"{option} must be whole seconds, at least 1 (conntrack counts seconds)", ExitCode.USAGE)
    return int(seconds)
