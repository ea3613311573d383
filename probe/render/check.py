"""One connection's life: check and hold."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from probe.render.console import dur
from probe.render.discover import render_after_expiry, render_proxy
from probe.render.udp import STATE_MEANING


def _heartbeat_line(beat: dict[str, Any]) -> str:
    line = f"{beat['sent']} sent, {beat['answered']} answered, {beat['missed']} missed"
    if beat.get("rtt_median_s") is not None:
        line += (
            f"; rtt min {dur(beat['rtt_min_s'])}, median {dur(beat['rtt_median_s'])}, "
            f"p95 {dur(beat['rtt_p95_s'])}, max {dur(beat['rtt_max_s'])}"
        )
    return line


def render_check(result: dict[str, Any], console: Console) -> None:
    verdict = "[green]PASSED[/green]" if result["passed"] else "[red]FAILED[/red]"
    console.print(
        f"[bold]natprobe check[/bold] {escape(str(result['target']))}: idle {dur(result['idle_s'])} {verdict}"
    )
    render_proxy(result.get("proxy"), console)
    if result.get("udp_state"):
        state = result["udp_state"]
        console.print(f"  UDP flow state before the idle: {state} ({STATE_MEANING.get(state, '')})")
    if not result["passed"]:
        console.print(f"  Ended after {dur(result['alive_s'])}: {result['failure_mode']}")
        render_after_expiry(result.get("after_expiry"), console)
    close = result.get("close")
    if close:
        console.print(f"  Close code {close['code']} {escape(str(close['reason']))}")
    beat = result.get("heartbeat")
    if beat:
        console.print(f"  Heartbeats: {_heartbeat_line(beat)}")
    if result.get("heartbeat"):
        console.print(
            "  Note: heartbeats come from this side; a pass means they keep the session usable, "
            "not that the path keeps idle flows."
        )
    elif result.get("client_originated"):
        console.print(
            "  Note: kernel keepalive was on. Its probes come from this side and may re-create a forgotten NAT "
            "mapping, so a pass means the setting keeps the connection usable, not that the path keeps idle flows."
        )


def render_hold(result: dict[str, Any], console: Console) -> None:
    colour = "green" if result["lasted"] else "red"
    console.print(
        f"[bold]natprobe hold[/bold] {escape(str(result['target']))}: alive {dur(result['alive_s'])}, "
        f"ended [{colour}]{result['ended']}[/{colour}] - {escape(str(result['detail']))}"
    )
    render_proxy(result.get("proxy"), console)
    if result.get("close_code") is not None:
        console.print(f"  Close code {result['close_code']} {escape(str(result.get('close_reason') or ''))}")
    if result.get("natprobe_server") and result["lasted"]:
        console.print("  The far end is a natprobe server: it kept the silent connection open as long as the path did.")
    beat = result.get("heartbeat")
    if beat:
        console.print(f"  Heartbeats: {_heartbeat_line(beat)}")
    sessions = result.get("sessions") or []
    if len(sessions) > 1:
        ages = ", ".join(f"{dur(s['alive_s'])} ({s['ended']})" for s in sessions)
        console.print(f"  Sessions: {ages}")
    if result.get("note"):
        console.print(f"  [yellow]{escape(str(result['note']))}[/yellow]")
    info = result.get("tcp_info")
    if info:
        keys = ("probes", "backoff", "retransmits", "total_retrans", "rto_us", "rtt_us", "last_data_recv_ms")
        table = Table(title="TCP_INFO (last sample before the end)")
        for key in keys:
            table.add_column(key)
        table.add_row(*(str(info.get(key, "-")) for key in keys))
        console.print(table)
