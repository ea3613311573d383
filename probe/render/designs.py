"""The designs tried on the path, the kind of box they point to, and the advice they prove."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from probe.core.design_advice import design_settings
from probe.core.designs import LIKELY, TRAFFIC, Design, DesignOutcome, Kind, Middlebox
from probe.core.plan import Plan
from probe.core.recommend import Recommendations
from probe.render.console import dur

#: How a verdict reads in the summary (the words padded alike, then coloured).
KEPT_WORDS = {True: ("kept", "green"), False: ("not kept", "red"), None: ("not told", "yellow")}


def kept_word(kept: bool | None, tried: bool = True) -> str:
    """yes / no / not tried, for the plan's column."""
    if not tried:
        return "not tried"
    return {True: "yes", False: "no", None: "not told"}[kept]


def render_designs(designs: dict[Design, DesignOutcome] | None, box: Middlebox | None, console: Console) -> None:
    if not designs:
        return
    console.print("  [bold]Designs tried[/bold] (each connection carried only its own traffic, then got a push):")
    width = max(len(d.value) for d in designs)
    for design, outcome in designs.items():
        word, colour = KEPT_WORDS[outcome.kept]
        # Two short lines rather than one that wraps under the names.
        console.print(
            f"    {design.value.ljust(width)}  [{colour}]{word.ljust(8)}[/{colour}]  {escape(TRAFFIC[design])}"
        )
        console.print(f"      {escape(outcome.detail)}")
    if box is not None:
        console.print(f"  Middlebox: [bold]{box.kind.value}[/bold] - {escape(box.detail)}")


def render_design_advice(
    rec: Recommendations, designs: dict[Design, DesignOutcome] | None, box: Middlebox | None, plan: Plan,
    console: Console,
) -> None:  # fmt: skip
    """Where kernel keepalive was proven not to keep the path: say so, and
    give the settings of the cheapest design that did."""
    tcp = designs.get(Design.TCP_KEEPALIVE) if designs else None
    if tcp is None or tcp.kept is not False:
        return
    likely = LIKELY[box.kind] if box is not None else LIKELY[Kind.UNKNOWN]
    console.print(
        "  [bold]TCP keepalive does not keep this path[/bold]: its probes never reached the box that forgets; "
        f"likely {escape(likely)}."
    )
    if rec.design is None:
        console.print("    No design tried kept the flow: raise the idle timeout of the box in the path.")
    else:
        console.print(
            f"    Kept it: [bold]{rec.design.value}[/bold], the cheapest design that did "
            f"({escape(TRAFFIC[rec.design])}). At least every {dur(rec.interval_s)}:"
        )
        for stack, setting in design_settings(rec.design, rec.interval_s, plan.heartbeat.timeout_s):
            console.print(f"      {escape(stack)}: {escape(setting)}")
    ka = plan.keepalive
    console.print(
        f"    Kernel keepalive can still notice a dead peer, not keep this path: "
        f"TCP_KEEPIDLE {ka.idle_s}, TCP_KEEPINTVL {ka.interval_s}, TCP_KEEPCNT {ka.count} "
        f"(noticed after {dur(ka.detect_s)})."
    )
