"""The summary of ``natprobe demo --hung-server``."""

from __future__ import annotations

from rich.console import Console

from probe.core.hung import HungServerDemo
from probe.render.console import dur


def render_hung_server(result: HungServerDemo, console: Console) -> None:
    keepalive, heartbeat = result.hung_server.keepalive, result.hung_server.heartbeat
    kernel = keepalive.keepalive_in_force
    console.print(f"[bold]natprobe demo --hung-server[/bold] {result.server}")
    console.print(
        "  After its welcome the server's application hangs: it reads and answers nothing, "
        "while its kernel still acknowledges every packet."
    )
    probes = f"probes after {dur(kernel.idle_s)} idle, every {dur(kernel.interval_s)}, {kernel.count} tries"
    if keepalive.noticed_s is None:
        dead = (
            ""
            if keepalive.dead_peer_s is None
            else f" (a dead host it would notice after {dur(keepalive.dead_peer_s)})"
        )
        console.print(
            f"  Kernel keepalive ({probes}): [red]never noticed[/red] in {dur(keepalive.waited_s)} of waiting{dead}: "
            "the hung server's kernel answers every probe, so the connection looks alive for as long as you wait."
        )
    else:
        console.print(f"  Kernel keepalive ({probes}): noticed after {dur(keepalive.noticed_s)}.")
    beats = f"every {dur(heartbeat.interval_s)}, answer within {dur(heartbeat.timeout_s)}"
    answered = "none" if heartbeat.answered == 0 else str(heartbeat.answered)
    if heartbeat.noticed_s is None:
        console.print(f"  Heartbeat ({beats}): never noticed ({heartbeat.sent} sent, {answered} answered).")
    else:
        console.print(
            f"  Heartbeat ({beats}): [green]noticed after {dur(heartbeat.noticed_s)}[/green], within its interval "
            f"plus timeout ({heartbeat.sent} sent, {answered} answered)."
        )
    console.print(
        "  A live kernel is not a live application: only a heartbeat the application answers, with a timeout, "
        "notices a hung peer. Shown here with a message heartbeat; websockets' ping_interval and ping_timeout "
        "work the same way for WebSocket, but this demo did not try them."
    )
    console.print(f"  Took {dur(result.wall_s)}.")
