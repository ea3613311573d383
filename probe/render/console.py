"""Human-readable output (rich). Only this package imports rich."""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from probe.core.after_expiry import meaning
from probe.core.durations import format_duration
from probe.render.udp import STATE_MEANING, render_states, render_udp_plan, render_udp_recommendations


class _Console(Console):
    """On a terminal, long lines wrap at words, keeping their indent.

    Elsewhere (a pipe, a file) every line stays whole, as long as it is, so
    that scripts can grep it: soft wrap, as rich calls it.
    """

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if not self.soft_wrap and len(objects) == 1 and isinstance(objects[0], str):
            line = objects[0]
            text = line.lstrip(" ")
            indent = len(line) - len(text)
            if indent:
                # The indent says where a line belongs; wrapped lines keep it.
                objects = (Padding(Text.from_markup(text), (0, 0, 0, indent), expand=False),)
        super().print(*objects, **kwargs)


def make_console(stream: TextIO | None = None, width: int | None = None) -> Console:
    console = _Console(
        file=stream or sys.stdout,
        width=width,
        no_color=bool(os.environ.get("NO_COLOR")) or None,
        highlight=False,
    )
    console.soft_wrap = not console.is_terminal
    return console


def _dur(value: Any) -> str:
    return format_duration(value) if isinstance(value, (int, float)) else "-"


MODE_MEANING = {
    "silent_drop": "flows were forgotten silently: a NAT or firewall dropping idle state",
    "reset": "flows were reset: a middlebox that sends RST, or a server that forgot the flow",
    "closed": "flows were closed: typically a proxy or load balancer idle timeout",
}


def render_proxy(result: dict[str, Any], console: Console) -> None:
    """Say so when a proxy stood in the path: it is a middlebox of its own."""
    proxy = result.get("proxy")
    if proxy:
        console.print(
            f"  Through the proxy {escape(str(proxy))}: what was measured is the path through it, "
            "its own idle timeout included"
        )


def render_discover(result: dict[str, Any], console: Console, truth_s: float | None = None) -> None:
    lower, upper = result["lower_s"], result["upper_s"]
    target = escape(str(result["target"]))
    console.print(f"[bold]natprobe discover[/bold] {target}")
    render_proxy(result, console)
    longest = result["longest_survived_s"]
    if upper is None and result["reason"] == "max_idle":
        console.print(
            f"  No idle timeout up to {_dur(result['max_idle_s'])}: every idle tested survived, the longest "
            f"{_dur(longest)}. No keepalive is needed against this path up to that idle."
        )
    elif upper is None and longest is None:
        console.print(f"  Nothing was measured before the run stopped ({result['reason']}).")
    elif upper is None:
        console.print(
            f"  No timeout seen before the run stopped ({result['reason']}): idles up to {_dur(longest)} "
            "survived; nothing longer was measured, so the path's timeout is unknown beyond that."
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
    tests = len(result["probes"])
    conns = result["connections"]
    udp = result["transport"] == "udp"
    console.print(
        f"  Took {_dur(result['wall_s'])} with {tests} test{'' if tests == 1 else 's'} on "
        f"{conns.get('opened', '?')} {'probes (a UDP socket each)' if udp else 'connections'} ({result['reason']})"
    )
    if conns.get("limited_by_server"):
        console.print(
            f"  [yellow]The server allowed {conns['pool']} test connections from this address[/yellow] "
            f"({conns['asked']} asked for; other sessions from here hold the rest): slower than usual."
        )
    # UDP: the timeline of the shortest state, whose bracket is the one above.
    shown = [p for p in result.get("probes") or [] if not udp or p.get("state") == result.get("shortest_state")]
    for line in timeline(shown, lower, upper):
        console.print("  " + escape(line))
    if result["transport"] == "udp":
        render_states(result, console)
        render_udp_recommendations(result.get("recommendations"), console)
        render_udp_plan(result.get("plan"), console)
        if result.get("interrupted"):
            console.print("  [yellow]Interrupted[/yellow]: the brackets above are what was measured so far.")
        return
    render_after_expiry(result.get("after_expiry"), console)
    unacked = (result.get("server_view") or {}).get("unacknowledged_pushes")
    if unacked:
        console.print(
            f"  Server's view: {unacked} push{'es' if unacked != 1 else ''} never acknowledged by this side's TCP "
            "(a second witness, from the far end, that the flows were dropped)"
        )
    render_recommendations(result.get("recommendations"), console)
    render_plan(result.get("plan"), console, complete=result["reason"] == "max_idle")
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


TIMELINE_WIDTH = 50


def _axis(tests: list[tuple[float, bool]], lo: float, hi: float, width: int) -> str:
    cells = [" "] * width
    span = max(hi - lo, 1e-9)
    for idle, survived in tests:
        if not lo <= idle <= hi:
            continue
        col = min(width - 1, int((idle - lo) / span * (width - 1) + 0.5))
        # A failure wins a shared cell: it is the rarer, more telling mark.
        cells[col] = "x" if not survived or cells[col] == "x" else "+"
    return "".join(cells)


def timeline(probes: list[dict[str, Any]], lower: float | None, upper: float | None) -> list[str]:
    """Each test on an axis of idle seconds: + survived, x failed; then a zoom on the bracket."""
    tests = [(float(p["idle_s"]), p["outcome"] == "survived") for p in probes]
    if not tests:
        return []
    hi = max(idle for idle, _ in tests)
    zoom = lower is not None and upper is not None
    # The legend says what the second axis is: the axes themselves stay
    # short enough for an 80-column terminal.
    rows = [
        f"Timeline (idle time; + survived, x failed{'; below, a zoom on the bracket' if zoom else ''})",
        f"{'0s':>8} |{_axis(tests, 0.0, hi, TIMELINE_WIDTH)}| {_dur(hi)}",
    ]
    if lower is not None and upper is not None:
        margin = max(upper - lower, 0.1)
        lo, top = max(0.0, lower - 2 * margin), upper + 2 * margin
        rows.append(f"{_dur(lo):>8} |{_axis(tests, lo, top, TIMELINE_WIDTH)}| {_dur(top)}")
    return rows


def render_after_expiry(after: dict[str, Any] | None, console: Console) -> None:
    """What an application meets when it speaks on a forgotten flow."""
    if not after:
        return
    cases = [("idle, nobody spoke", after)]
    if after.get("after_lost_push"):
        cases.append(("after a lost push", after["after_lost_push"]))
    shown = [(label, case) for label, case in cases if case.get("outcome")]
    if not shown:
        return
    console.print("  [bold]After the timeout[/bold], when the application sends again:")
    for label, case in shown:
        outcome = case["outcome"]
        extra = ""
        if case.get("late_push_delivered"):
            extra = " The lost push arrived late, once the mapping was back."
        elif outcome == "revived" and label == "after a lost push":
            extra = " The lost push never arrived."
        console.print(f"    {label}: [bold]{outcome}[/bold]: {escape(meaning(outcome))}.{extra}")


def render_plan(plan: dict[str, Any] | None, console: Console, complete: bool = True) -> None:
    """The keepalive plan: each design's cost per connection and time to notice a dead path."""
    if not plan:
        return
    ka, hb, srv = plan["keepalive"], plan["heartbeat"], plan["server"]
    if plan["purpose"] == "detect_only" and complete:
        console.print("  [bold]Plan[/bold]: the path needs no keepalive; these settings only detect dead peers")
    elif plan["purpose"] == "detect_only":
        console.print(
            "  [bold]Plan[/bold]: no timeout was measured, so none of this keeps the path alive; "
            "these settings only detect dead peers (a longer run would learn the timeout)"
        )
    else:
        console.print(f"  [bold]Plan[/bold]: keep each connection busy at least every {_dur(plan['interval_s'])}")
    variant = f"IPv{plan['ip_version']}{', TLS' if plan['tls'] else ''}"
    rows = [
        ("design", "settings", "notices a dead path", "packets/day", f"bytes/day ({variant})"),
        (
            "kernel keepalive",
            f"idle {ka['idle_s']}s, then every {ka['interval_s']}s x {ka['count']}",
            f"after {_dur(ka['detect_s'])}",
            f"{ka['packets_per_day']:,}",
            f"{ka['bytes_per_day']:,}",
        ),
        (
            f"heartbeat ({hb['mode']})",
            f"every {_dur(hb['interval_s'])}, answer within {_dur(hb['timeout_s'])}",
            f"after {_dur(hb['detect_s'])}",
            f"{hb['packets_per_day']:,}",
            f"{hb['bytes_per_day']:,}",
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    # On a terminal too narrow for the table, each design's costs go on a
    # line of their own under it, rather than wrapping across the columns.
    folded = not console.soft_wrap and 4 + sum(widths) + 2 * 4 > console.width
    for row in rows:
        cells = [row[i].ljust(widths[i]) if i < 3 else row[i].rjust(widths[i]) for i in range(5)]
        if folded:
            console.print("    " + escape("  ".join(cells[:3]).rstrip()))
            console.print("      " + escape("  ".join(cells[3:])))
        else:
            console.print("    " + escape("  ".join(cells)))
    console.print(
        "    Heartbeats only when idle cost nothing on a connection that carries its own traffic "
        f"(fixed ones: {hb['busy_connection_packets_per_day']['fixed']:,} packets/day regardless)."
    )
    held = srv["held_today"]
    console.print(
        f"    Server: set TCP_USER_TIMEOUT {_dur(srv['user_timeout_s'])} and drop sessions silent for "
        f"{_dur(srv['idle_session_timeout_s'])}; with kernel defaults a session pushed into a dead path is held "
        f"{_dur(held['pushed_s'])}, an idle one until something is written to it."
    )


def render_recommendations(rec: dict[str, Any] | None, console: Console) -> None:
    if not rec:
        return
    interval = rec["interval_s"]
    sysctl = rec["linux_sysctl"]
    opts = rec["socket_options"]
    console.print(f"  [bold]Recommended[/bold]: keep connections busy at least every {_dur(interval)}")
    console.print("    Linux, system-wide TCP keepalive:")
    for key, value in sysctl.items():
        console.print(f"      sysctl -w {key}={value}")
    console.print("    Python, per socket:")
    console.print("      sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)")
    for key in ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT"):
        console.print(f"      sock.setsockopt(socket.IPPROTO_TCP, socket.{key}, {opts[key]})")
    console.print(
        f"    WebSocket: ping every {_dur(rec['websocket_ping_interval_s'])} "
        f"(websockets: ping_interval={rec['websocket_ping_interval_s']:g})"
    )
    if rec.get("proxy"):
        console.print(f"    Proxy: {escape(str(rec['proxy']))}")


def render_check(result: dict[str, Any], console: Console) -> None:
    verdict = "[green]PASSED[/green]" if result["passed"] else "[red]FAILED[/red]"
    console.print(
        f"[bold]natprobe check[/bold] {escape(str(result['target']))}: idle {_dur(result['idle_s'])} {verdict}"
    )
    render_proxy(result, console)
    if result.get("udp_state"):
        state = result["udp_state"]
        console.print(f"  UDP flow state before the idle: {state} ({STATE_MEANING.get(state, '')})")
    if not result["passed"]:
        console.print(f"  Ended after {_dur(result['alive_s'])}: {result['failure_mode']}")
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
        f"[bold]natprobe hold[/bold] {escape(str(result['target']))}: alive {_dur(result['alive_s'])}, "
        f"ended [{colour}]{result['ended']}[/{colour}] - {escape(str(result['detail']))}"
    )
    render_proxy(result, console)
    if result.get("close_code") is not None:
        console.print(f"  Close code {result['close_code']} {escape(str(result.get('close_reason') or ''))}")
    if result.get("natprobe_server") and result["lasted"]:
        console.print("  The far end is a natprobe server: it kept the silent connection open as long as the path did.")
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


def render_locate(result: dict[str, Any], console: Console) -> None:
    """The answer in one sentence, then the trace: evidence to hand on."""
    console.print(f"[bold]natprobe locate[/bold] {escape(str(result['target']))}")
    console.print(f"  {escape(str(result['summary']).capitalize())}.")
    if not result["consistent"]:
        console.print("  [yellow]Some rounds disagreed[/yellow]: the answer rests on the connections that agreed.")
    expiring = (result.get("expiring_hop") or {}).get("ttl")
    console.print(
        f"  Timeout {_dur(result['timeout_s'])}; each connection idled {_dur(result['wait_s'])} with keepalive "
        f"probes every {result['probe_interval_s']}s limited to its TTL; took {_dur(result['wall_s'])}."
    )
    outcomes = {r["ttl"]: r["outcome"] for r in result["rounds"] if r["ttl"]}
    for hop in result["hops"]:
        rtt = "" if hop["rtt_s"] is None else f"  {hop['rtt_s'] * 1000:.1f} ms"
        mark = "  <- state expires here" if hop["ttl"] == expiring else ""
        outcome = outcomes.get(hop["ttl"], "-")
        address = hop["address"] or "* (no answer)"
        console.print(f"  {hop['ttl']:>3}  {escape(address):<40}{rtt:<12}  probes to here: {outcome}{mark}")


def render_local(facts: dict[str, Any], console: Console) -> None:
    console.print("[bold]natprobe local[/bold]")
    default = facts.get("default_route_interface")
    for iface in facts["interfaces"]:
        marks = [] if iface["up"] else ["down"]
        if iface["name"] == default:
            marks.append("default route")
        suffix = f" ({', '.join(marks)})" if marks else ""
        addrs = ", ".join(f"{a['address']} [{a['scope']}]" for a in iface["addresses"]) or "no IP addresses"
        console.print(f"  {escape(iface['name'])}{suffix}: {escape(addrs)}")
    if facts["private_only"]:
        console.print("  Only private addresses: this host is likely behind NAT.")
    ka = facts["keepalive_defaults"]
    if ka.get("idle_s") is not None:
        console.print(
            f"  Kernel keepalive defaults: first probe after {_dur(ka['idle_s'])} idle, "
            f"then every {_dur(ka['interval_s'])}, give up after {ka['count']} probes"
        )
    supported = [name for name, ok in facts["supported_options"].items() if ok]
    console.print(f"  Socket options available: {', '.join(supported) or 'none'}")
    for proc in facts.get("natprobe_sockets") or []:
        if proc["sockets"]:
            states = ", ".join(f"{n} {state}" for state, n in sorted(proc["states"].items()))
            console.print(f"  natprobe pid {proc['pid']}: {proc['sockets']} sockets ({escape(states)})")


def _summary_line(kind: str, entry: dict[str, Any]) -> str:
    if kind == "check":
        verdict = "passed" if entry.get("passed") else f"failed ({entry.get('failure_mode')})"
        return f"idle {_dur(entry.get('idle_s'))} {verdict}"
    return f"[{_dur(entry.get('lower_s'))}, {_dur(entry.get('upper_s'))}] {entry.get('failure_mode') or ''}".rstrip()


def render_history(groups: list[dict[str, Any]], file: str, console: Console) -> None:
    if not groups:
        console.print(f"No saved results yet ({escape(file)}).")
        return
    for group in groups:
        path = group["path"]
        where = f"{path['target']} via {path.get('interface') or '?'} as {path.get('observed_ip') or '?'}"
        flag = "  [yellow]CHANGED[/yellow]" if group["changed"] else ""
        console.print(f"[bold]{escape(group['kind'])}[/bold] {escape(where)}{flag}")
        for entry in group["entries"][-5:]:
            console.print(f"  {escape(str(entry.get('at')))}  {escape(_summary_line(group['kind'], entry))}")


def render_history_note(info: dict[str, Any] | None, console: Console) -> None:
    """One line after a result: how it compares with the previous on this path."""
    if not info or info.get("previous") is None:
        return
    prev = info["previous"]
    if info.get("changed"):
        console.print(
            f"  [yellow]Changed[/yellow] since {escape(str(prev.get('at')))}: it was "
            f"{escape(_summary_line('discover' if 'lower_s' in prev else 'check', prev))}"
        )
    else:
        console.print(f"  Same as the previous result on this path ({escape(str(prev.get('at')))}).")
