"""Option declarations shared by several commands (the names are a contract)."""

from __future__ import annotations

from typing import Annotated

import typer

from probe.core.pools import DEFAULT_PARALLEL, DEFAULT_UDP_PARALLEL

Header = Annotated[
    list[str] | None, typer.Option("--header", help="Extra handshake header 'Name: value' (repeatable).")
]
Subprotocol = Annotated[str | None, typer.Option("--subprotocol", help="WebSocket subprotocol to ask for.")]
CaCert = Annotated[str | None, typer.Option("--cacert", help="Verify wss:// against this CA bundle (PEM).")]
Insecure = Annotated[bool, typer.Option("--insecure", help="Do not verify the wss:// certificate.")]
HeartbeatOpt = Annotated[str | None, typer.Option("--heartbeat", help="Send a heartbeat every DUR.")]
HeartbeatKind = Annotated[str, typer.Option("--heartbeat-kind", help="ping (WebSocket ping) | message")]
HeartbeatMode = Annotated[
    str, typer.Option("--heartbeat-mode", help="fixed (fixed clock) | idle (only after DUR without traffic)")
]
HeartbeatTimeout = Annotated[
    str | None, typer.Option("--heartbeat-timeout", help="End the session if a heartbeat is unanswered this long.")
]
KeepaliveIdle = Annotated[str | None, typer.Option("--keepalive-idle", help="TCP keepalive idle time.")]
KeepaliveInterval = Annotated[str | None, typer.Option("--keepalive-interval", help="TCP keepalive probe interval.")]
KeepaliveCount = Annotated[int | None, typer.Option("--keepalive-count", help="TCP keepalive probes before giving up.")]
Token = Annotated[str | None, typer.Option("--token", envvar="NATPROBE_TOKEN", help="Server's shared secret.")]
NoSave = Annotated[bool, typer.Option("--no-save", help="Do not save the result to the history.")]
ProxyOpt = Annotated[
    str | None,
    typer.Option(
        "--proxy",
        help="Go through this proxy: http://[user:pass@]HOST:PORT (CONNECT), socks5://, socks5h://, "
        "or env (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY, as curl reads them).",
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]

# The target of the commands that need a natprobe server (discover, check).
ServerTarget = Annotated[
    str,
    typer.Argument(
        help="tcp://HOST[:PORT] (port 4040 if none), udp://HOST[:PORT] or ws(s)://HOST[:PORT]/PATH "
        "of a natprobe server."
    ),
]
# A discovery's planner: discover and survey (each of a survey's paths).
MaxIdle = Annotated[str, typer.Option("--max-idle", help="Longest idle to test.")]
Resolution = Annotated[
    str | None, typer.Option("--resolution", help="Bracket width wanted (default: 2% of T, at least 0.5s).")
]
Budget = Annotated[str | None, typer.Option("--budget", help="Stop after this long with the best bracket.")]
ExpectMin = Annotated[
    str | None, typer.Option("--expect-min", help="Exit 1 as soon as the path is proven to forget flows sooner.")
]
DiscoverGrace = Annotated[
    str | None, typer.Option("--grace", help="Wait this long for a push before calling it lost (default: from RTT).")
]
NdJson = Annotated[bool, typer.Option("--ndjson", help="Stream one JSON event per line; the result is the last line.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")]
Parallel = Annotated[
    int | None,
    typer.Option(
        "--parallel",
        min=3,
        max=4096,
        help="Connections open at once (a survey: per path), the control connection included; "
        "udp:// shares its probes between the three flow states.",
        show_default=f"{DEFAULT_PARALLEL}; udp:// {DEFAULT_UDP_PARALLEL}",
    ),
]
