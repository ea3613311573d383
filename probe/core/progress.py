"""What a discovery in progress looks like, as data: what the live view draws.

Sans-I/O: built from the planners and the time, never from sockets, so a
TCP run (one planner) and a UDP run (one planner per flow state) show the
same way, and a test can build one on a virtual clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from probe.core.evidence import Outcome
from probe.core.planner import ConnState, Planner


@dataclass(frozen=True)
class ConnRow:
    conn: int
    state: str
    #: Idle so far; None while the connection is still opening.
    age_s: float | None
    #: The idle it is being tested at, or will be at its next scout.
    target_s: float | None
    next_scout: bool = False


@dataclass(frozen=True)
class Mark:
    idle_s: float
    survived: bool


@dataclass(frozen=True)
class StateProgress:
    #: The UDP flow state this planner measures; None for TCP.
    state: str | None
    lower_s: float | None
    upper_s: float | None
    width_s: float | None
    #: No failure yet: the soonest the answer can come, from now, if the
    #: timeout lies just above what survived. Refining: the grace left.
    expected_in_s: float
    refining: bool
    #: Connections, oldest idle first, then those still opening.
    connections: tuple[ConnRow, ...]
    recent: tuple[Mark, ...]
    finished: bool


@dataclass(frozen=True)
class Progress:
    target: str
    elapsed_s: float
    states: tuple[StateProgress, ...]


def state_progress(
    planner: Planner, started: float, now: float, state: str | None = None, recent: int = 4
) -> StateProgress:
    """One planner's view at ``now``; ``started`` is when the run began."""
    cfg = planner.config
    bracket = planner.bracket()
    refining = bracket.upper is not None
    if refining:
        expected = cfg.grace_s
    else:
        # The time goal: a failure just above what survived shows by then.
        due = started + cfg.open_delay_s + cfg.wall_factor * (bracket.longest_survived or 0.0) + cfg.wall_slack_s
        expected = max(0.0, due + cfg.grace_s - now)
    scout = planner.next_scout
    rows = []
    # Idle ones oldest first (the next to be tested), then those still opening.
    order = sorted(planner.conns.values(), key=lambda v: (v.state is ConnState.OPENING, v.idle_since, v.id))
    for view in order:
        target = None
        is_next = scout is not None and scout[0] == view.id
        if view.state is ConnState.PROBING and view.probe_at is not None:
            target = view.probe_at - view.idle_since
        elif is_next and scout is not None:
            target = scout[1] - view.idle_since
        age = None if view.state is ConnState.OPENING else view.age(now)
        rows.append(ConnRow(view.id, view.state.value, age, target, is_next))
    marks = tuple(Mark(t.idle_s, t.outcome is Outcome.SURVIVED) for t in planner.evidence.tests[-recent:])
    return StateProgress(
        state=state,
        lower_s=bracket.lower,
        upper_s=bracket.upper,
        width_s=bracket.width,
        expected_in_s=expected,
        refining=refining,
        connections=tuple(rows),
        recent=marks if recent > 0 else (),
        finished=planner.finished is not None,
    )
