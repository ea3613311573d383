"""The live view of a discovery on a terminal (rich).

It draws a ``Progress`` (probe/core/progress.py), which the run builds from
its planners: one block for TCP, one per flow state for UDP. Refreshed from
the event loop itself, at most 4 times a second, so it reads the run's state
without threads or locks, and an idle probe wakes only for those redraws.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from probe.core.durations import format_duration as fmt
from probe.core.progress import Progress, StateProgress
from probe.core.text import printable

REFRESH_S = 0.25
#: Connection rows shown per block: fewer when several blocks share the screen.
MAX_ROWS = 12
MAX_ROWS_EACH = 5


class Watched(Protocol):
    clock: Callable[[], float]

    def progress(self, now: float) -> Progress: ...

    async def run(self) -> Any: ...


def _block(view: StateProgress, rows: int) -> list[Any]:
    prefix = f"{view.state}: " if view.state is not None else ""
    if view.upper_s is None:
        bracket = f"survived up to {fmt(view.lower_s)}, no failure yet"
        eta = f"answer in {fmt(view.expected_in_s)} at the soonest, if the timeout is just above"
    else:
        bracket = f"between {fmt(view.lower_s)} and {fmt(view.upper_s)} (width {fmt(view.width_s)})"
        eta = "done" if view.finished else f"refining; about {fmt(view.expected_in_s)} more"
    lines: list[Any] = [Text(f"{prefix}Bracket: {bracket}"), Text(f"{' ' * len(prefix)}Expected: {eta}")]
    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("conn", "state", "idle age", "idle target"):
        table.add_column(column, justify="right" if column != "state" else "left")
    for row in view.connections[:rows]:
        target = "-" if row.target_s is None else fmt(row.target_s) + (" (next)" if row.next_scout else "")
        table.add_row(str(row.conn), row.state, fmt(row.age_s), target)
    if view.connections:
        lines.append(table)
    if len(view.connections) > rows:
        lines.append(Text(f"... and {len(view.connections) - rows} younger connections"))
    if view.recent:
        marks = ", ".join(f"{fmt(m.idle_s)} {'ok' if m.survived else 'FAIL'}" for m in view.recent)
        lines.append(Text(f"Recent tests: {marks}"))
    return lines


def render_progress(progress: Progress) -> Group:
    """What the operator sees right now."""
    lines: list[Any] = [Text.assemble(("natprobe discover ", "bold"), printable(progress.target))]
    lines.append(Text(f"Elapsed {fmt(progress.elapsed_s)}"))
    rows = MAX_ROWS if len(progress.states) == 1 else MAX_ROWS_EACH
    for view in progress.states:
        lines.extend(_block(view, rows))
    return Group(*lines)


async def run_with_live(run: Watched, console: Console) -> Any:
    """Run the discovery with the live view; return its result."""
    with Live(console=console, auto_refresh=False, transient=True, redirect_stderr=False) as live:

        async def refresh() -> None:
            while True:
                live.update(render_progress(run.progress(run.clock())), refresh=True)
                await asyncio.sleep(REFRESH_S)

        painter = asyncio.create_task(refresh())
        try:
            return await run.run()
        finally:
            painter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await painter
