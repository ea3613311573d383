"""The UDP parts of a discovery's summary: flow states, inbound refresh, advice, cost."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape

from probe.core.durations import format_duration
from probe.core.results import DiscoverResult
from probe.core.udp_advice import UdpPlan, UdpRecommendations

STATE_MEANING = {
    "unreplied": "one datagram out, nothing back until the push",
    "replied": "one request and its reply, then idle",
    "stream": "two exchanges more than 2 s apart, then idle",
}


def _dur(value: Any) -> str:
    return "?" if value is None else format_duration(float(value))


def render_states(result: DiscoverResult, console: Console) -> None:
    states = result.states or {}
    if not states:
        return
    console.print("  Flow states (each measured with its own probes):")
    shortest = result.shortest_state
    for name, state in states.items():
        mark = " [bold]<- shortest[/bold]" if name == shortest else ""
        b = state.bracket
        if b.upper is None:
            found = f"no timeout seen; longest idle survived {_dur(b.lower)}"
        else:
            found = f"{_dur(b.lower)} - {_dur(b.upper)}"
        console.print(f"    {name:10} {found:28} ({STATE_MEANING.get(name, '')}){mark}")
    refresh = result.inbound_refresh
    if refresh is True:
        console.print(
            "  Inbound refresh: [bold]yes[/bold]: the server's traffic alone kept a binding alive, so a server-side "
            "keepalive can keep a client reachable"
        )
    elif refresh is False:
        console.print(
            "  Inbound refresh: [bold]no[/bold]: the binding expired although the server kept sending; only the "
            "client's own packets keep it (the client must send the keepalives)"
        )
    else:
        console.print("  Inbound refresh: not measured (no state timed out, or the run ended first)")
    after = result.after_expiry
    if after is not None and after.outcome is not None:
        console.print(
            f"  [bold]After the timeout[/bold], the client sends again: [bold]{after.outcome}[/bold]: "
            f"{escape(after.detail)}"
        )


def render_udp_recommendations(rec: UdpRecommendations | None, console: Console) -> None:
    if rec is None:
        return
    console.print(
        f"  [bold]Recommended[/bold]: send on each flow at least every {_dur(rec.interval_s)} "
        f"(beats the {escape(str(rec.state))} state)"
    )
    if rec.design is not None:
        console.print(f"    Proven on this path: {rec.design.value} kept the binding (the cheapest design that did)")
    console.print(f"    WireGuard: PersistentKeepalive = {rec.wireguard.persistent_keepalive}")
    quic = rec.quic
    console.print(
        f"    QUIC: keep-alive PING every {_dur(quic.keep_alive_interval_s)}; needed whenever "
        f"max_idle_timeout is above {_dur(quic.max_idle_timeout_needs_keepalive_above_s)}"
    )
    console.print(f"    SIP/STUN: keepalive every {rec.sip.keepalive_interval_s}s (RFC 5626 suggests 24-29 s)")
    verdict = {True: "keeps this path alive", False: "too slow for this path", None: "inside the bracket"}
    for default in rec.common_defaults:
        console.print(f"      {escape(default.name)}: {verdict[default.keeps_alive]}")


def render_udp_plan(plan: UdpPlan, console: Console) -> None:
    if not plan.keepalives:
        return
    console.print(f"  [bold]Cost[/bold] per binding and day at that interval (IPv{plan.ip_version}):")
    names = {"wireguard": "WireGuard keepalive", "quic_ping": "QUIC PING + ACK", "stun_binding": "STUN Binding"}
    for key, cost in plan.keepalives.items():
        console.print(
            f"    {names.get(key, key):20} {cost.packets_per_day:>8,} packets {cost.bytes_per_day:>10,} bytes"
        )
