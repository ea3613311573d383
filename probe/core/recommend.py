"""Turn a measured bracket into settings that keep connections alive."""

from __future__ import annotations

from probe.core.evidence import Bracket

#: Keepalive fires at this fraction of the shortest idle proven to survive,
#: leaving room for timer slack, a lost probe and a NAT that sweeps early.
MARGIN = 0.8


def recommended_interval(bracket: Bracket) -> float | None:
    """An interval (s) that keeps this path alive, or None if nothing survived."""
    if bracket.lower is not None and bracket.lower > 0:
        base = bracket.lower
    elif bracket.upper is not None:
        # Even the shortest test failed: stay well below it.
        base = bracket.upper / 2
    else:
        return None
    interval = base * MARGIN
    # Whole seconds where they matter little (the kernel's keepalive options
    # take whole seconds); always rounded down, never past the margin.
    return float(int(interval)) if interval >= 10 else int(interval * 10) / 10
