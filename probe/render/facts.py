"""Facts about the path and this host: locate and local."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from probe.core.local import LocalFacts
from probe.core.locate import LocateResult
from probe.render.console import dur


def render_locate(result: LocateResult, console: Console) -> None:
    """The answer in one sentence, then the trace: evidence to hand on."""
    console.print(f"[bold]natprobe locate[/bold] {escape(result.target)}")
    console.print(f"  {escape(result.summary.capitalize())}.")
    if not result.consistent:
        console.print("  [yellow]Some rounds disagreed[/yellow]: the answer rests on the connections that agreed.")
    expiring = None if result.expiring_hop is None else result.expiring_hop.ttl
    console.print(
        f"  Timeout {dur(result.timeout_s)}; each connection idled {dur(result.wait_s)} with keepalive "
        f"probes every {result.probe_interval_s}s limited to its TTL; took {dur(result.wall_s)}."
    )
    outcomes = {r.ttl: r.outcome for r in result.rounds if r.ttl}
    for hop in result.hops:
        rtt = "" if hop.rtt_s is None else f"  {hop.rtt_s * 1000:.1f} ms"
        mark = "  <- state expires here" if hop.ttl == expiring else ""
        outcome = outcomes.get(hop.ttl, "-")
        address = hop.address or "* (no answer)"
        console.print(f"  {hop.ttl:>3}  {escape(address):<40}{rtt:<12}  probes to here: {outcome}{mark}")


def render_local(facts: LocalFacts, console: Console) -> None:
    console.print("[bold]natprobe local[/bold]")
    default = facts.default_route_interface
    for iface in facts.interfaces:
        marks = [] if iface.up else ["down"]
        if iface.name == default:
            marks.append("default route")
        suffix = f" ({', '.join(marks)})" if marks else ""
        addrs = ", ".join(f"{a.address} [{a.scope}]" for a in iface.addresses) or "no IP addresses"
        console.print(f"  {escape(iface.name)}{suffix}: {escape(addrs)}")
    if facts.private_only:
        console.print("  Only private addresses: this host is likely behind NAT.")
    ka = facts.keepalive_defaults
    if ka.idle_s is not None:
        console.print(
            f"  Kernel keepalive defaults: first probe after {dur(ka.idle_s)} idle, "
            f"then every {dur(ka.interval_s)}, give up after {ka.count} probes"
        )
    supported = [name for name, ok in facts.supported_options.items() if ok]
    console.print(f"  Socket options available: {', '.join(supported) or 'none'}")
    for proc in facts.natprobe_sockets:
        if proc.sockets:
            states = ", ".join(f"{n} {state}" for state, n in sorted(proc.states.items()))
            console.print(f"  natprobe pid {proc.pid}: {proc.sockets} sockets ({escape(states)})")
