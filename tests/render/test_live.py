"""The live view, rendered to a fixed-width console: one block for TCP, one per UDP flow state."""

from __future__ import annotations

import io

from rich.console import Console

from probe.core.progress import ConnRow, Mark, Progress, StateProgress
from probe.render.live import MAX_ROWS_EACH, render_progress


def shown(progress: Progress) -> str:
    out = io.StringIO()
    Console(file=out, width=100, no_color=True, color_system=None, highlight=False).print(render_progress(progress))
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def view(state: str | None, rows: int, upper: float | None = None, finished: bool = False) -> StateProgress:
    conns = tuple(ConnRow(i, "idle", 30.0 - i, 33.0 if i == 0 else None, i == 0) for i in range(rows))
    return StateProgress(
        state=state, lower_s=29.5, upper_s=upper, width_s=None if upper is None else upper - 29.5,
        expected_in_s=4.25 if upper is None else 1.0, refining=upper is not None, connections=conns,
        recent=(Mark(29.5, True), Mark(31.0, False)) if upper is not None else (Mark(29.5, True),), finished=finished,
    )  # fmt: skip


def test_a_tcp_run_shows_its_bracket_its_connections_and_what_is_next() -> None:
    text = shown(Progress("tcp://198.18.0.5:4040", 32.5, (view(None, 2),)))
    assert text == (
        "natprobe discover tcp://198.18.0.5:4040\n"
        "Elapsed 32.5s\n"
        "Bracket: survived up to 29.5s, no failure yet\n"
        "Expected: answer in 4.2s at the soonest, if the timeout is just above\n"
        "conn  state  idle age   idle target\n"
        "   0  idle      30.0s  33.0s (next)\n"
        "   1  idle      29.0s             -\n"
        "Recent tests: 29.5s ok"
    )


def test_a_udp_run_shows_one_block_per_flow_state_with_fewer_rows_each() -> None:
    states = (view("unreplied", 8, upper=31.0), view("replied", 1, upper=31.0, finished=True), view("stream", 0))
    text = shown(Progress("udp://198.18.0.5:4040", 40.0, states))
    assert "unreplied: Bracket: between 29.5s and 31.0s (width 1.5s)" in text
    assert "           Expected: refining; about 1.0s more" in text
    assert f"... and {8 - MAX_ROWS_EACH} younger connections" in text
    assert "replied: Bracket: between 29.5s and 31.0s (width 1.5s)\n         Expected: done" in text
    assert "stream: Bracket: survived up to 29.5s, no failure yet" in text
    assert "Recent tests: 29.5s ok, 31.0s FAIL" in text
    # A block without connections has no table header of its own.
    assert text.count("conn  state") == 2
