"""The live view of a discovery on a terminal (rich).

Refreshed from the event loop itself, at most 4 times a second, so it reads
the planner's state without threads or locks, and an idle probe wakes only
for those redraws.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from probe.core.durations import format_duration as fmt
from probe.core.planner import ConnState
from probe.core.text import printable
from probe.run.discover import DiscoverRun

REFRESH_S = 0.25
MAX_ROWS = 12


def snapshot(run: DiscoverRun, now: float) -> Group:
    """What the operator sees right now."""
    planner = run.planner
    started = run.started if run.started is not None else now
    elapsed = now - started
    bracket = planner.bracket()
    cfg = planner.config
    lines: list[Any] = []
    title = Text.assemble(("natprobe discover ", "bold"), printable(run.options.target))
    lines.append(title)
    lower = bracket.lower
    upper = bracket.upper
    if upper is None:
        expected = started + cfg.wall_factor * (bracket.longest_survived or 0.0) + cfg.wall_slack_s + cfg.grace_s
        bracket_text = f"survived up to {fmt(lower)}, no failure yet"
        eta = f"answer no sooner than {fmt(max(0.0, expected - now))} from now (if the timeout is just above)"
    else:
        bracket_text = f"between {fmt(lower)} and {fmt(upper)} (width {fmt(bracket.width)})"
        eta = f"refining; about {fmt(cfg.grace_s)} more"
    lines.append(Text(f"Elapsed {fmt(elapsed)}   Bracket: {bracket_text}"))
    lines.append(Text(f"Expected: {eta}"))
    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("conn", "state", "idle age", "idle target"):
        table.add_column(column, justify="right" if column != "state" else "left")
    conns = sorted(planner.conns.values(), key=lambda v: v.idle_since)
    scout = planner.next_scout
    for view in conns[:MAX_ROWS]:
        age = view.age(now) if view.state is not ConnState.OPENING else None
        if view.state is ConnState.PROBING and view.probe_at is not None:
            target = fmt(view.probe_at - view.idle_since)
        elif scout is not None and scout[0] == view.id:
            target = fmt(scout[1] - view.idle_since) + " (next)"
        else:
            target = "-"
        table.add_row(str(view.id), view.state.value, fmt(age), target)
    lines.append(table)
    if len(conns) > MAX_ROWS:
        lines.append(Text(f"... and {len(conns) - MAX_ROWS} younger connections"))
    recent = planner.evidence.tests[-4:]
    if recent:
        marks = ", ".join(f"{fmt(t.idle_s)} {'ok' if t.outcome.value == 'survived' else 'FAIL'}" for t in recent)
        lines.append(Text(f"Recent tests: {marks}"))
    return Group(*lines)


async def run_with_live(run: DiscoverRun, console: Console) -> Any:
    """Run the discovery with the live view; return its result."""
    with Live(console=console, auto_refresh=False, transient=True, redirect_stderr=False) as live:

        async def refresh() -> None:
            while True:
                live.update(snapshot(run, run.clock()), refresh=True)
                await asyncio.sleep(REFRESH_S)

        painter = asyncio.create_task(refresh())
        try:
            return await run.run()
        finally:
            painter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await painter
