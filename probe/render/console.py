"""Human-readable output (rich). Only this package imports rich."""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from probe.core.durations import format_duration


def make_console(stream: TextIO | None = None, width: int | None = None) -> Console:
    return Console(
        file=stream or sys.stdout,
        width=width,
        no_color=bool(os.environ.get("NO_COLOR")) or None,
        highlight=False,
        soft_wrap=False,
    )


def _dur(value: Any) -> str:
    return format_duration(value) if isinstance(value, (int, float)) else "-"


MODE_MEANING = {
    "silent_drop": "flows were forgotten silently: a NAT or firewall dropping idle state",
    "reset": "flows were reset: a middlebox that sends RST, or a server that forgot the flow",
    "closed": "flows were closed: typically a proxy or load balancer idle timeout",
}


def render_discover(result: dict[str, Any], console: Console, truth_s: float | None = None) -> None:
    lower, upper = result["lower_s"], result["upper_s"]
    target = escape(str(result["target"]))
    console.print(f"[bold]natprobe discover[/bold] {target}")
    if upper is None:
        console.print(
            f"  No idle timeout up to {_dur(result['max_idle_s'])}: the longest idle tested, "
            f"{_dur(result['longest_survived_s'])}, survived."
        )
    else:
        console.print(
            f"  Idle timeout between [bold]{_dur(lower)}[/bold] (longest idle that survived) "
            f"and [bold]{_dur(upper)}[/bold] (shortest that failed)"
        )
        console.print(f"  Estimate: {_dur(result['estimate_s'])}  (bracket width {_dur(result['width_s'])})")
    if truth_s is not None:
        inside = lower is not None and upper is not None and lower <= truth_s <= upper
        mark = "[green]inside[/green]" if inside else "[red]outside[/red]"
        console.print(f"  Emulated NAT timeout: {_dur(truth_s)} ({mark} the measured bracket)")
    mode = result.get("failure_mode")
    if mode:
        console.print(f"  Failure mode: {mode} - {MODE_MEANING.get(mode, '')}")
    if not result.get("consistent", True):
        console.print(
            "  [yellow]Evidence was inconsistent[/yellow] (survivals above failures): the path has no sharp "
            "timeout; the bracket is widened to cover it."
        )
    nat = result.get("nat") or {}
    if nat.get("detected") is not None:
        preserved = nat.get("port_preserved")
        extra = "" if preserved is None else (", port preserved" if preserved else ", port rewritten")
        console.print(
            f"  Address: local {escape(str(nat.get('local')))}, server saw {escape(str(nat.get('observed')))} "
            f"({'translated' if nat.get('detected') else 'no translation'}{extra})"
        )
    console.print(
        f"  Took {_dur(result['wall_s'])} with {len(result['probes'])} tests on "
        f"{result['connections'].get('opened', '?')} connections ({result['reason']})"
    )
    rec = result.get("recommended_keepalive_s")
    if rec is not None:
        console.print(f"  [bold]Recommended[/bold]: keepalive or heartbeat every {_dur(rec)} or less")
    if result.get("interrupted"):
        console.print("  [yellow]Interrupted[/yellow]: the bracket above is what was measured so far.")


def _heartbeat_line(beat: dict[str, Any]) -> str:
    line = f"{beat['sent']} sent, {beat['answered']} answered, {beat['missed']} missed"
    if beat.get("rtt_median_s") is not None:
        line += (
            f"; rtt min {_dur(beat['rtt_min_s'])}, median {_dur(beat['rtt_median_s'])}, "
            f"p95 {_dur(beat['rtt_p95_s'])}, max {_dur(beat['rtt_max_s'])}"
        )
    return line


def render_check(result: dict[str, Any], console: Console) -> None:
    verdict = "[green]PASSED[/green]" if result["passed"] else "[red]FAILED[/red]"
    console.print(
        f"[bold]natprobe check[/bold] {escape(str(result['target']))}: idle {_dur(result['idle_s'])} {verdict}"
    )
    if not result["passed"]:
        console.print(f"  Ended after {_dur(result['alive_s'])}: {result['failure_mode']}")
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
        f"[bold]natprobe hold[/bold] {escape(str(result['target']))}: alive {_dur(result['alive_s'])}, "
        f"ended [{colour}]{result['ended']}[/{colour}] - {escape(str(result['detail']))}"
    )
    if result.get("close_code") is not None:
        console.print(f"  Close code {result['close_code']} {escape(str(result.get('close_reason') or ''))}")
    beat = result.get("heartbeat")
    if beat:
        console.print(f"  Heartbeats: {_heartbeat_line(beat)}")
    sessions = result.get("sessions") or []
    if len(sessions) > 1:
        ages = ", ".join(f"{_dur(s['alive_s'])} ({s['ended']})" for s in sessions)
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
