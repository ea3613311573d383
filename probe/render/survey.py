"""A survey's summary: one row per path, side by side."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from probe.core.durations import format_duration
from probe.core.recommend import recommended_interval
from probe.core.survey import SurveyPath, SurveyResult


def _dur(value: float | None) -> str:
    return "-" if value is None else format_duration(value)


def _bracket(path: SurveyPath) -> str:
    result = path.result
    if result is None:
        return "-"
    b = result.bracket
    if b.upper is None:
        return "none seen" if b.lower is None else f"> {_dur(b.lower)}"
    return f"{_dur(b.lower)} - {_dur(b.upper)}"


def _after_expiry(path: SurveyPath) -> str:
    after = None if path.result is None else path.result.after_expiry
    outcome = None if after is None else after.outcome
    return "-" if outcome is None else str(outcome)


def _interval(path: SurveyPath) -> str:
    if path.result is None:
        return "-"
    seconds = recommended_interval(path.result.bracket)
    return "none needed" if seconds is None and path.result.reason == "max_idle" else _dur(seconds)


def _kept_by(path: SurveyPath) -> str:
    """The cheapest design proven on the path to keep its flow; "-" where none was tried."""
    result = path.result
    if result is None or result.designs is None:
        return "-"
    advice = result.advice
    design = None if advice is None else advice.design
    return "none" if design is None and advice is not None else (design.value if design is not None else "-")


def render_survey(survey: SurveyResult, console: Console) -> None:
    console.print(f"[bold]natprobe survey[/bold] {len(survey.paths)} path{'' if len(survey.paths) == 1 else 's'}")
    # Two spaces between columns where they fit, one on a narrow terminal.
    narrow = not console.soft_wrap and console.width < 100
    table = Table(box=None, pad_edge=False, padding=(0, 1 if narrow else 2, 0, 0), show_edge=False)
    # On a narrow terminal the targets fold first; values never break.
    table.add_column("target", overflow="fold")
    tried = any(path.result is not None and path.result.designs is not None for path in survey.paths)
    # The design a path proved gets a column where it fits, else a line under the table.
    design_column = tried and not narrow
    columns = ("family", "port", "idle timeout", "failure", "after expiry", *(("design",) * design_column), "keepalive")
    for column in columns:
        table.add_column(column, no_wrap=" " not in column, justify="right" if column == "port" else "left")
    for path in survey.paths:
        mode = None if path.result is None else path.result.bracket.failure_mode
        table.add_row(
            escape(path.target),
            "-" if path.family is None else f"IPv{path.family}",
            str(path.port),
            _bracket(path),
            "-" if mode is None else mode.value,
            _after_expiry(path),
            *((_kept_by(path),) * design_column),
            _interval(path),
        )
    if console.soft_wrap:
        # Not a terminal: rows stay whole, however long, for scripts to grep.
        # (print's own width= is capped at the console's, 80 in a pipe.)
        width = console.width
        console.width = Measurement.get(console, console.options.update(max_width=10_000), table).maximum
        try:
            console.print(table)
        finally:
            console.width = width
    else:
        console.print(table)
    for index, path in enumerate(survey.paths, 1):
        if tried and not design_column and path.result is not None:
            console.print(f"  path {index}: design {_kept_by(path)}")
        if path.error is not None:
            console.print(f"  [red]path {index} not measured[/red]: {escape(path.error.message)}")
        elif path.result is not None and path.result.proxy:
            console.print(f"  path {index} went through the proxy {escape(path.result.proxy)}: its timeout counts too")
    if tried:
        console.print(
            "  design: the cheapest keepalive design tried on that path that kept its flow (docs/designs.md); "
            "the interval comes from its bracket."
        )
    elif any(path.result is not None and path.result.bracket.upper is not None for path in survey.paths):
        console.print(
            "  Keepalive intervals come from each bracket and were not tried on the paths: "
            "`natprobe check TARGET --idle DUR --keepalive-idle N` (or `--heartbeat N`) tries one."
        )
    total = survey.total_s if survey.total_s is not None else survey.wall_s
    console.print(f"  Every bracket settled after {_dur(survey.wall_s)}, all paths at once; {_dur(total)} in all.")
    if survey.interrupted:
        console.print("  [yellow]Interrupted[/yellow]: the brackets above are what was measured so far.")
