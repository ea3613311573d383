"""Brackets for tests of what is derived from them (not a test module)."""

from __future__ import annotations

from probe.core.evidence import Bracket, Evidence, FailureMode, IdleTest, Outcome


def bracket(lower: float | None, upper: float | None) -> Bracket:
    """The bracket of one survival at ``lower`` and one silent failure at ``upper``."""
    evidence = Evidence()
    if lower is not None:
        evidence.add(IdleTest(0, lower, Outcome.SURVIVED))
    if upper is not None:
        evidence.add(IdleTest(1, upper, Outcome.FAILED, FailureMode.SILENT_DROP))
    return evidence.bracket()
