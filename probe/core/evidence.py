"""Test outcomes and the bracket they imply.

A test keeps a connection idle for some seconds and asks the far side to speak
first. "survived" means the push arrived; "failed" means it did not, or the
connection ended while idle. The bracket is computed from every outcome, and
contradictions widen it instead of being dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Outcome(StrEnum):
    SURVIVED = "survived"
    FAILED = "failed"

    @classmethod
    def of(cls, survived: bool) -> Outcome:
        return cls.SURVIVED if survived else cls.FAILED


class FailureMode(StrEnum):
    SILENT_DROP = "silent_drop"
    RESET = "reset"
    CLOSED = "closed"


class Source(StrEnum):
    """What ended an idle test."""

    #: The server's push arrived.
    PUSH = "push"
    #: The connection ended (reset or closed) while idle.
    DEATH = "death"
    #: Nothing arrived by the deadline: the push was lost.
    DEADLINE = "deadline"


@dataclass
class IdleTest:
    """One idle test on one connection. Times are seconds since the run started."""

    conn: int
    idle_s: float
    outcome: Outcome
    failure_mode: FailureMode | None = None
    idle_since: float = 0.0
    asked_at: float | None = None
    result_at: float = 0.0
    rtt_s: float | None = None
    #: The push came after the grace period had already declared it lost.
    late: bool = False
    source: Source = Source.PUSH
    #: The UDP flow state the probe tested (None for TCP and WebSocket).
    state: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "conn": self.conn,
            "idle_s": round(self.idle_s, 3),
            "outcome": self.outcome.value,
            "failure_mode": self.failure_mode.value if self.failure_mode else None,
            "source": self.source.value,
            "late": self.late,
            "state": self.state,
            "timings": {
                "idle_since_s": round(self.idle_since, 3),
                "asked_at_s": None if self.asked_at is None else round(self.asked_at, 3),
                "result_at_s": round(self.result_at, 3),
                "rtt_s": None if self.rtt_s is None else round(self.rtt_s, 4),
            },
        }


@dataclass(frozen=True)
class Bracket:
    """What the tests say about the path's idle timeout.

    With consistent evidence, ``lower`` is the longest idle that survived and
    ``upper`` the shortest that failed. When the evidence contradicts itself
    (a survival at or above a failure, as behind a NAT that sweeps its table
    now and then), both ends move outwards so that the bracket spans every
    contradiction and ``consistent`` is False: ``lower`` is then the longest
    survival below every failure, ``upper`` the shortest failure above every
    survival or, until one is seen, the longest survival.
    """

    lower: float | None
    upper: float | None
    consistent: bool
    longest_survived: float | None
    shortest_failed: float | None
    failure_mode: FailureMode | None
    #: The shortest failure above every survival: where flows always died.
    outer_upper: float | None = None

    @property
    def width(self) -> float | None:
        if self.upper is None:
            return None
        return self.upper - (self.lower or 0.0)

    @property
    def estimate(self) -> float | None:
        if self.upper is None:
            return None
        if self.lower is None:
            return self.upper / 2
        return (self.lower + self.upper) / 2


@dataclass
class Evidence:
    """The tests so far, with the bracket kept up to date."""

    tests: list[IdleTest] = field(default_factory=list)

    def add(self, test: IdleTest) -> None:
        self.tests.append(test)

    def bracket(self) -> Bracket:
        survived = [t.idle_s for t in self.tests if t.outcome is Outcome.SURVIVED]
        failed = [t for t in self.tests if t.outcome is Outcome.FAILED]
        longest = max(survived) if survived else None
        shortest_test = min(failed, key=lambda t: t.idle_s) if failed else None
        shortest = shortest_test.idle_s if shortest_test else None
        consistent = longest is None or shortest is None or longest < shortest
        if consistent:
            lower, upper = longest, shortest
        else:
            assert shortest is not None and longest is not None
            below = [s for s in survived if s < shortest]
            above = [t.idle_s for t in failed if t.idle_s > longest]
            lower = max(below) if below else None
            upper = min(above) if above else longest
        outer = [t.idle_s for t in failed if longest is None or t.idle_s > longest]
        return Bracket(
            outer_upper=min(outer) if outer else None,
            lower=lower,
            upper=upper,
            consistent=consistent,
            longest_survived=longest,
            shortest_failed=shortest,
            failure_mode=self._mode(failed),
        )

    @staticmethod
    def _mode(failed: list[IdleTest]) -> FailureMode | None:
        if not failed:
            return None
        # The failure that sits at the timeout says most about the middlebox;
        # a later one may have been a connection already gone for long.
        return min(failed, key=lambda t: t.idle_s).failure_mode
