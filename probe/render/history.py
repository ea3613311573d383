"""The saved results: the history table and the note after a run."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape

from probe.render.console import dur


def _summary_line(kind: str, entry: dict[str, Any]) -> str:
    if kind == "check":
        verdict = "passed" if entry.get("passed") else f"failed ({entry.get('failure_mode')})"
        return f"idle {dur(entry.get('idle_s'))} {verdict}"
    return f"[{dur(entry.get('lower_s'))}, {dur(entry.get('upper_s'))}] {entry.get('failure_mode') or ''}".rstrip()


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
