"""A discovery's summary: the bracket, its evidence, the after-expiry test, the advice and the plan."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from probe.core.after_expiry import AfterExpiry, AfterOutcome, meaning
from probe.core.designs import Design, DesignOutcome, verdict
from probe.core.evidence import IdleTest, Outcome
from probe.core.model import to_json
from probe.core.plan import Plan
from probe.core.radio import RadioCost
from probe.core.recommend import Recommendations
from probe.core.results import DiscoverResult
from probe.core.udp_advice import UdpPlan, UdpRecommendations
from probe.render.console import dur
from probe.render.designs import kept_word, render_design_advice, render_designs
from probe.render.udp import render_states, render_udp_plan, render_udp_recommendations

MODE_MEANING = {
    "silent_drop": "flows were forgotten silently: a NAT or firewall dropping idle state",
    "reset": "flows were reset: a middlebox that sends RST, or a server that forgot the flow",
    "closed": "flows were closed: typically a proxy or load balancer idle timeout",
}


def render_proxy(proxy: str | None, console: Console) -> None:
    """Say so when a proxy stood in the path: it is a middlebox of its own."""
    if proxy:
        console.print(
            f"  Through the proxy {escape(str(proxy))}: what was measured is the path through it, "
            "its own idle timeout included"
        )


def _bracket_lines(result: DiscoverResult, console: Console) -> None:
    b = result.bracket
    longest = b.longest_survived
    if b.upper is None and result.reason == "max_idle":
        console.print(
            f"  No idle timeout up to {dur(result.max_idle_s)}: every idle tested survived, the longest "
            f"{dur(longest)}. No keepalive is needed against this path up to that idle."
        )
    elif b.upper is None and longest is None:
        console.print(f"  Nothing was measured before the run stopped ({result.reason}).")
    elif b.upper is None:
        console.print(
            f"  No timeout seen before the run stopped ({result.reason}): idles up to {dur(longest)} "
            "survived; nothing longer was measured, so the path's timeout is unknown beyond that."
        )
    else:
        console.print(
            f"  Idle timeout between [bold]{dur(b.lower)}[/bold] (longest idle that survived) "
            f"and [bold]{dur(b.upper)}[/bold] (shortest that failed)"
        )
        console.print(f"  Estimate: {dur(b.estimate)}  (bracket width {dur(b.width)})")


def render_discover(result: DiscoverResult, console: Console, truth_s: float | None = None) -> None:
    b = result.bracket
    console.print(f"[bold]natprobe discover[/bold] {escape(result.target)}")
    render_proxy(result.proxy, console)
    _bracket_lines(result, console)
    if truth_s is not None:
        inside = b.lower is not None and b.upper is not None and b.lower <= truth_s <= b.upper
        mark = "[green]inside[/green]" if inside else "[red]outside[/red]"
        console.print(f"  Emulated NAT timeout: {dur(truth_s)} ({mark} the measured bracket)")
    if b.failure_mode is not None:
        mode = b.failure_mode.value
        console.print(f"  Failure mode: {mode} - {MODE_MEANING.get(mode, '')}")
    if not b.consistent:
        console.print(
            "  [yellow]Evidence was inconsistent[/yellow] (survivals above failures): the path has no sharp "
            "timeout; the bracket is widened to cover it."
        )
    nat = result.nat
    if nat.detected is not None:
        preserved = nat.port_preserved
        extra = "" if preserved is None else (", port preserved" if preserved else ", port rewritten")
        console.print(
            f"  Address: local {escape(nat.local)}, server saw {escape(nat.observed)} "
            f"({'translated' if nat.detected else 'no translation'}{extra})"
        )
    tests = len(result.tests)
    conns = result.connections
    udp = result.states is not None
    console.print(
        f"  Took {dur(result.wall_s)} with {tests} test{'' if tests == 1 else 's'} on "
        f"{conns.opened} {'probes (a UDP socket each)' if udp else 'connections'} ({result.reason})"
    )
    if conns.limited_by_server:
        console.print(
            f"  [yellow]The server allowed {conns.pool} test connections from this address[/yellow] "
            f"({conns.asked} asked for; other sessions from here hold the rest): slower than usual."
        )
    # UDP: the timeline of the shortest state, whose bracket is the one above.
    shown = [t for t in result.tests if not udp or t.state == result.shortest_state]
    for line in timeline(shown, b.lower, b.upper):
        console.print("  " + escape(line))
    advice = result.advice
    plan = result.plan
    if isinstance(plan, UdpPlan):
        render_states(result, console)
        render_designs(result.designs, None, console)
        render_udp_recommendations(advice if isinstance(advice, UdpRecommendations) else None, console)
        render_udp_plan(plan, console)
        if result.interrupted:
            console.print("  [yellow]Interrupted[/yellow]: the brackets above are what was measured so far.")
        return
    render_after_expiry(result.after_expiry, console)
    unacked = result.server_view.unacknowledged_pushes
    if unacked:
        console.print(
            f"  Server's view: {unacked} push{'es' if unacked != 1 else ''} never acknowledged by this side's TCP "
            "(a second witness, from the far end, that the flows were dropped)"
        )
    render_designs(result.designs, result.middlebox, console)
    rec = advice if isinstance(advice, Recommendations) else None
    render_recommendations(rec, console, result.designs)
    if rec is not None:
        render_design_advice(rec, result.designs, result.middlebox, plan, console)
    render_plan(plan, console, complete=result.reason == "max_idle", tried=result.designs is not None)
    if result.interrupted:
        console.print("  [yellow]Interrupted[/yellow]: the bracket above is what was measured so far.")


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


def timeline(probes: list[IdleTest], lower: float | None, upper: float | None) -> list[str]:
    """Each test on an axis of idle seconds: + survived, x failed; then a zoom on the bracket."""
    tests = [(t.idle_s, t.outcome is Outcome.SURVIVED) for t in probes]
    if not tests:
        return []
    hi = max(idle for idle, _ in tests)
    zoom = lower is not None and upper is not None
    # The legend says what the second axis is: the axes themselves stay
    # short enough for an 80-column terminal.
    rows = [
        f"Timeline (idle time; + survived, x failed{'; below, a zoom on the bracket' if zoom else ''})",
        f"{'0s':>8} |{_axis(tests, 0.0, hi, TIMELINE_WIDTH)}| {dur(hi)}",
    ]
    if lower is not None and upper is not None:
        margin = max(upper - lower, 0.1)
        lo, top = max(0.0, lower - 2 * margin), upper + 2 * margin
        rows.append(f"{dur(lo):>8} |{_axis(tests, lo, top, TIMELINE_WIDTH)}| {dur(top)}")
    return rows


def render_after_expiry(after: AfterExpiry | None, console: Console) -> None:
    """What an application meets when it speaks on a forgotten flow."""
    if after is None:
        return
    shown = [] if after.outcome is None else [("idle, nobody spoke", after.outcome, "")]
    lost = after.after_lost_push
    if lost is not None:
        extra = ""
        if lost.late_push_delivered:
            extra = " The lost push arrived late, once the mapping was back."
        elif lost.outcome is AfterOutcome.REVIVED:
            extra = " The lost push never arrived."
        shown.append(("after a lost push", lost.outcome, extra))
    if not shown:
        return
    console.print("  [bold]After the timeout[/bold], when the application sends again:")
    for label, outcome, extra in shown:
        console.print(f"    {label}: [bold]{outcome}[/bold]: {escape(meaning(outcome))}.{extra}")


def render_plan(plan: Plan, console: Console, complete: bool = True, tried: bool = False) -> None:
    """The keepalive plan: each design's cost per connection, time to notice a
    dead path, and (``tried``) whether its design connection kept this path."""
    ka, hb, srv = plan.keepalive, plan.heartbeat, plan.server
    if plan.purpose == "detect_only" and complete:
        console.print("  [bold]Plan[/bold]: the path needs no keepalive; these settings only detect dead peers")
    elif plan.purpose == "detect_only":
        console.print(
            "  [bold]Plan[/bold]: no timeout was measured, so none of this keeps the path alive; "
            "these settings only detect dead peers (a longer run would learn the timeout)"
        )
    else:
        console.print(f"  [bold]Plan[/bold]: keep each connection busy at least every {dur(plan.interval_s)}")
    variant = f"IPv{plan.ip_version}{', TLS' if plan.tls else ''}"
    rows = [
        ("design", "kept here", "settings", "notices a dead path", "packets/day", f"bytes/day ({variant})"),
        (
            "kernel keepalive",
            kept_word(ka.kept, tried),
            f"idle {ka.idle_s}s, then every {ka.interval_s}s x {ka.count}",
            f"after {dur(ka.detect_s)}",
            f"{ka.cost.packets_per_day:,}",
            f"{ka.cost.bytes_per_day:,}",
        ),
        (
            f"heartbeat ({hb.mode})",
            kept_word(hb.kept, tried),
            f"every {dur(hb.interval_s)}, answer within {dur(hb.timeout_s)}",
            f"after {dur(hb.detect_s)}",
            f"{hb.cost.packets_per_day:,}",
            f"{hb.cost.bytes_per_day:,}",
        ),
    ]
    columns = len(rows[0])
    widths = [max(len(row[i]) for row in rows) for i in range(columns)]
    # On a terminal too narrow for the table, each design's costs go on a
    # line of their own under it, rather than wrapping across the columns.
    folded = not console.soft_wrap and 4 + sum(widths) + 2 * (columns - 1) > console.width
    for row in rows:
        cells = [row[i].ljust(widths[i]) if i < 4 else row[i].rjust(widths[i]) for i in range(columns)]
        if folded:
            # The design, its verdict and settings; under them, what it notices and costs.
            console.print("    " + escape("  ".join(cells[:3]).rstrip()))
            console.print("      " + escape("  ".join(cells[3:])))
        else:
            console.print("    " + escape("  ".join(cells)))
    console.print(
        f"    On a phone (LTE) the radio is the cost: kernel keepalive {_radio(ka.cost.mobile)}, "
        f"the heartbeat {_radio(hb.cost.mobile)} (docs/plan.md)."
    )
    console.print(
        "    Heartbeats only when idle cost nothing on a connection that carries its own traffic "
        f"(fixed ones: {hb.busy_connection_packets_per_day.fixed:,} packets/day regardless)."
    )
    console.print(
        f"    Server: set TCP_USER_TIMEOUT {dur(srv.user_timeout_s)} and drop sessions silent for "
        f"{dur(srv.idle_session_timeout_s)}; with kernel defaults a session pushed into a dead path is held "
        f"{dur(srv.held_today.pushed_s)}, an idle one until something is written to it."
    )


def _radio(cost: RadioCost) -> str:
    if cost.radio_wakeups_per_day == 0:
        return f"keeps the radio awake all day (about {cost.lte_energy_j_per_day / 1000:.0f} kJ)"
    return f"{cost.radio_wakeups_per_day:,} radio wake-ups a day (about {cost.lte_energy_j_per_day / 1000:.1f} kJ)"


def _tried(designs: dict[Design, DesignOutcome] | None, design: Design) -> str:
    """What the path said of the design behind a setting: only proven advice goes unlabelled."""
    kept = verdict(designs, design)
    if kept is None:
        return " (not tried on this path)" if designs is None or design not in designs else " (not told on this path)"
    return ""


def render_recommendations(
    rec: Recommendations | None, console: Console, designs: dict[Design, DesignOutcome] | None = None
) -> None:
    if rec is None:
        return
    console.print(f"  [bold]Recommended[/bold]: keep connections busy at least every {dur(rec.interval_s)}")
    if rec.linux_sysctl is None or rec.socket_options is None:
        # Proven not to keep this path: render_design_advice says what did.
        return
    if rec.design is not None:
        console.print(f"    Proven on this path: {rec.design.value} kept the flow (the cheapest design that did)")
    console.print(f"    Linux, system-wide TCP keepalive{_tried(designs, Design.TCP_KEEPALIVE)}:")
    # The sysctl names and the socket options as the model writes them out.
    for key, value in to_json(rec.linux_sysctl).items():
        console.print(f"      sysctl -w {key}={value}")
    console.print("    Python, per socket:")
    for key, value in to_json(rec.socket_options).items():
        level = "SOL_SOCKET" if key == "SO_KEEPALIVE" else "IPPROTO_TCP"
        console.print(f"      sock.setsockopt(socket.{level}, socket.{key}, {value})")
    ping = rec.websocket_ping_interval_s
    if ping is not None:
        tried = _tried(designs, Design.WS_PING)
        console.print(f"    WebSocket: ping every {dur(ping)} (websockets: ping_interval={ping:g}){tried}")
    if rec.proxy:
        console.print(f"    Proxy: {escape(rec.proxy)}")
