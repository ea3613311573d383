"""The saved results: the history table and the note after a run."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from probe.core.history import CheckSummary, HistoryGroup, HistoryNote, Summary
from probe.render.console import dur


def _summary_line(summary: Summary) -> str:
    if isinstance(summary, CheckSummary):
        verdict = "passed" if summary.passed else f"failed ({summary.failure_mode})"
        return f"idle {dur(summary.idle_s)} {verdict}"
    return f"[{dur(summary.lower_s)}, {dur(summary.upper_s)}] {summary.failure_mode or ''}".rstrip()


def render_history(groups: list[HistoryGroup], file: str, console: Console) -> None:
    if not groups:
        console.print(f"No saved results yet ({escape(file)}).")
        return
    for group in groups:
        path = group.path
        where = f"{path.target} via {path.interface or '?'} as {path.observed_ip or '?'}"
        flag = "  [yellow]CHANGED[/yellow]" if group.changed else ""
        console.print(f"[bold]{escape(group.kind)}[/bold] {escape(where)}{flag}")
        for entry in group.entries[-5:]:
            console.print(f"  {escape(str(entry.at))}  {escape(_summary_line(entry.summary))}")


def render_history_note(note: HistoryNote | None, console: Console) -> None:
    """One line after a result: how it compares with the previous on this path."""
    if note is None or note.previous is None:
        return
    prev = note.previous
    if note.changed:
        console.print(
            f"  [yellow]Changed[/yellow] since {escape(str(prev.at))}: it was {escape(_summary_line(prev.summary))}"
        )
    else:
        console.print(f"  Same as the previous result on this path ({escape(str(prev.at))}).")
