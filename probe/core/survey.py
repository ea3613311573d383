"""A survey: several discoveries side by side, and the pools they share.

Each path of a survey is a discovery of its own, with its own planner. Paths
that reach one server process from one client address share that server's
per-address limit; the server counts only connections already open, not the
ones a run has planned, so the runs of one survey keep a ledger of what each
plans and has not opened yet (``PoolShare``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from probe.core.results import DiscoverResult
from probe.errors import ExitCode

SCHEMA = "natprobe.survey/1"
#: ``--family`` and a survey job's ``family``: which address families of a name to survey.
FAMILY_NAMES = ("4", "6", "both")

#: Who shares a limit: (the server process's ``instance``, our address as it sees it).
ShareKey = tuple[str, str]


@dataclass
class Claim:
    """One run's pool on one server: ``pool`` planned, ``open_now()`` of them open."""

    key: ShareKey
    pool: int
    open_now: Callable[[], int]

    def outstanding(self) -> int:
        return max(0, self.pool - self.open_now())


@dataclass
class PoolShare:
    """The ledger of one survey's runs, so that the first to hear ``welcome``
    does not take a limit the others need.

    ``runs`` is how many runs the survey starts; a run sizing its pool gets a
    fair part of what is free while others have not sized theirs yet.
    """

    runs: int
    claims: list[Claim] = field(default_factory=list)
    _sized: int = 0

    def size(self, key: ShareKey, free: int, want: int, open_now: Callable[[], int]) -> tuple[int, Claim]:
        """How many of ``want`` this run may plan when the server says ``free``
        are left for our address (counting what is open already); the claim
        is recorded, and ``release`` ends it."""
        others = sum(c.outstanding() for c in self.claims if c.key == key)
        left = max(0, free - others)
        waiting = max(1, self.runs - self._sized)
        # Everyone still to come fits: take what was asked. Otherwise an even
        # part, and the server's "busy" (the pool shrinks) settles the rest.
        granted = want if left >= want * waiting else min(want, left // waiting)
        self._sized += 1
        claim = Claim(key, granted, open_now)
        self.claims.append(claim)
        return granted, claim

    def release(self, claim: Claim) -> None:
        """A run ended: what it planned is the server's to count again."""
        if claim in self.claims:
            self.claims.remove(claim)


@dataclass(frozen=True)
class PathError:
    """Why one path of a survey gave no result: the exit code it would have had."""

    message: str
    exit_code: int

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "exit_code": self.exit_code}


@dataclass(frozen=True)
class SurveyPath:
    """One way to the server: a target, over one address family."""

    target: str
    #: 4 or 6; None through a proxy (it resolves the name) or when unresolved.
    family: int | None
    port: int
    result: DiscoverResult | None = None
    error: PathError | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "family": self.family,
            "port": self.port,
            "result": None if self.result is None else self.result.to_json(),
            "error": None if self.error is None else self.error.to_json(),
        }


@dataclass(frozen=True)
class SurveyResult:
    paths: tuple[SurveyPath, ...]
    #: Until the last path's bracket was settled (discover's ``wall_s``).
    wall_s: float
    interrupted: bool = False
    #: The whole survey, every path's after-expiry test included.
    total_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "wall_s": round(self.wall_s, 3),
            "total_s": round(self.total_s if self.total_s is not None else self.wall_s, 3),
            "interrupted": self.interrupted,
            "paths": [p.to_json() for p in self.paths],
        }

    def exit_code(self, expect_min_s: float | None = None) -> int:
        """0 when every path was measured (and met ``expect_min_s``); 1 when
        one was proven shorter; else the worst code of a path that failed."""
        if self.interrupted:
            return ExitCode.INTERRUPTED
        failed = [p.error.exit_code for p in self.paths if p.error is not None]
        if failed:
            return max(failed)
        if expect_min_s is not None:
            for path in self.paths:
                upper = None if path.result is None else path.result.bracket.upper
                if upper is not None and upper < expect_min_s:
                    return ExitCode.FAILED
        return ExitCode.OK
