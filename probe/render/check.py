"""One connection's life: check and hold."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from probe.core.check import CheckResult
from probe.core.heartbeat import HeartbeatStats
from probe.core.hold import HoldResult
from probe.render.console import dur
from probe.render.discover import render_after_expiry, render_proxy
from probe.render.udp import STATE_MEANING


def _heartbeat_line(beat: HeartbeatStats) -> str:
    line = f"{beat.sent} sent, {beat.answered} answered, {beat.missed} missed"
    if beat.rtt_median_s is not None:
        line += (
            f"; rtt min {dur(beat.rtt_min_s)}, median {dur(beat.rtt_median_s)}, "
            f"p95 {dur(beat.rtt_p95_s)}, max {dur(beat.rtt_max_s)}"
        )
    return line


def render_check(result: CheckResult, console: Console) -> None:
    verdict = "[green]PASSED[/green]" if result.passed else "[red]FAILED[/red]"
    console.print(f"[bold]natprobe check[/bold] {escape(result.target)}: idle {dur(result.idle_s)} {verdict}")
    render_proxy(result.proxy, console)
    if result.udp is not None:
        state = result.udp.udp_state
        console.print(f"  UDP flow state before the idle: {state} ({STATE_MEANING.get(state, '')})")
    if not result.passed:
        console.print(f"  Ended after {dur(result.alive_s)}: {result.failure_mode}")
        render_after_expiry(result.after_expiry, console)
    if result.close is not None:
        console.print(f"  Close code {result.close.code} {escape(result.close.reason)}")
    if result.heartbeat is not None:
        console.print(f"  Heartbeats: {_heartbeat_line(result.heartbeat.stats)}")
        console.print(
            "  Note: heartbeats come from this side; a pass means they keep the session usable, "
            "not that the path keeps idle flows."
        )
    elif result.client_originated:
        console.print(
            "  Note: kernel keepalive was on. Its probes come from this side and may re-create a forgotten NAT "
            "mapping, so a pass means the setting keeps the connection usable, not that the path keeps idle flows."
        )


#: The TCP_INFO counters a hold shows, of the thirty it samples.
TCP_INFO_SHOWN = ("probes", "backoff", "retransmits", "total_retrans", "rto_us", "rtt_us", "last_data_recv_ms")


def render_hold(result: HoldResult, console: Console) -> None:
    colour = "green" if result.lasted else "red"
    console.print(
        f"[bold]natprobe hold[/bold] {escape(result.target)}: alive {dur(result.alive_s)}, "
        f"ended [{colour}]{result.ended}[/{colour}] - {escape(result.detail)}"
    )
    render_proxy(result.proxy, console)
    ws, tcp = result.ws, result.tcp
    if ws is not None and ws.close_code is not None:
        console.print(f"  Close code {ws.close_code} {escape(ws.close_reason or '')}")
    if result.natprobe_server and result.lasted:
        console.print("  The far end is a natprobe server: it kept the silent connection open as long as the path did.")
    if ws is not None and ws.heartbeat is not None:
        console.print(f"  Heartbeats: {_heartbeat_line(ws.heartbeat)}")
    if ws is not None and len(ws.sessions) > 1:
        ages = ", ".join(f"{dur(s.alive_s)} ({s.ended})" for s in ws.sessions)
        console.print(f"  Sessions: {ages}")
    if ws is not None and ws.note:
        console.print(f"  [yellow]{escape(ws.note)}[/yellow]")
    info = None if tcp is None else tcp.tcp_info
    if info:
        table = Table(title="TCP_INFO (last sample before the end)")
        for key in TCP_INFO_SHOWN:
            table.add_column(key)
        table.add_row(*(str(info.get(key, "-")) for key in TCP_INFO_SHOWN))
        console.print(table)
