"""Results over time, per network path, without I/O: keys, summaries, comparison.

A saved record is one JSON line: when, which kind of result, the path, and
the result's summary. Lines are read back leniently: a file written by an
older natprobe, or damaged, loses the lines it cannot parse, never the rest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from probe.core.model import inline, omitted_when_none


@dataclass(frozen=True)
class PathKey:
    """A path: the target, the public address the server saw (without the
    port, which changes per connection) and the local interface used."""

    target: str
    observed_ip: str | None
    interface: str | None


def host_of(address: str | None) -> str | None:
    """``IP:PORT`` or ``[IP]:PORT`` without its port; None stays None."""
    if not address:
        return None
    return address[1:].split("]")[0] if address.startswith("[") else address.rsplit(":", 1)[0]


def path_key(target: str, observed: str | None, interface: str | None) -> PathKey:
    return PathKey(target, host_of(observed), interface)


@dataclass(frozen=True)
class DiscoverSummary:
    lower_s: float | None
    upper_s: float | None
    estimate_s: float | None
    failure_mode: str | None
    consistent: bool | None
    reason: str | None

    kind = "discover"


@dataclass(frozen=True)
class CheckSummary:
    idle_s: float | None
    passed: bool | None
    failure_mode: str | None
    client_originated: bool | None

    kind = "check"


Summary = DiscoverSummary | CheckSummary
KINDS: dict[str, type[DiscoverSummary] | type[CheckSummary]] = {"discover": DiscoverSummary, "check": CheckSummary}


@dataclass(frozen=True)
class Entry:
    """One saved result as shown: when, and its summary's fields beside it."""

    at: str | None
    summary: Summary = field(metadata=inline())


@dataclass(frozen=True)
class Record:
    """One saved line."""

    at: str | None
    kind: str
    path: PathKey
    summary: Summary

    @property
    def entry(self) -> Entry:
        return Entry(self.at, self.summary)


@dataclass(frozen=True)
class HistoryNote:
    """(schema: ``history``) What saving a result found."""

    saved: bool
    file: str
    path: PathKey
    previous: Entry | None
    changed: bool | None
    error: str | None = field(default=None, metadata=omitted_when_none())


@dataclass(frozen=True)
class HistoryGroup:
    """(schema: history's ``paths[]``) One path's results of one kind, oldest first."""

    kind: str
    path: PathKey
    entries: list[Entry]
    changed: bool


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_record(data: Any) -> Record | None:
    """A saved line's record, or None where it is not one."""
    if not isinstance(data, dict):
        return None
    kind, path, summary = data.get("kind"), data.get("path"), data.get("summary")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None or not isinstance(path, dict) or not isinstance(summary, dict):
        return None
    target = path.get("target")
    if not isinstance(target, str):
        return None
    # Missing summary fields read as None: the shape of older natprobes.
    values = {f.name: summary.get(f.name) for f in dataclasses.fields(model)}
    key = PathKey(target, _text(path.get("observed_ip")), _text(path.get("interface")))
    return Record(_text(data.get("at")), model.kind, key, model(**values))


def changed(before: Summary, after: Summary) -> bool:
    """Did the path behave differently? Brackets that do not overlap, another
    failure mode, or another verdict at the same idle."""
    if isinstance(before, CheckSummary) or isinstance(after, CheckSummary):
        if not (isinstance(before, CheckSummary) and isinstance(after, CheckSummary)):
            return True
        return before.idle_s == after.idle_s and before.passed != after.passed
    if before.failure_mode != after.failure_mode:
        return True
    lo1, hi1 = before.lower_s or 0.0, before.upper_s
    lo2, hi2 = after.lower_s or 0.0, after.upper_s
    if hi1 is None or hi2 is None:
        return (hi1 is None) != (hi2 is None)
    return hi1 < lo2 or hi2 < lo1


def grouped(records: list[Record]) -> list[HistoryGroup]:
    """Records per path and kind, oldest first, with whether the last run changed."""
    groups: dict[tuple[str, PathKey], list[Entry]] = {}
    for rec in records:
        groups.setdefault((rec.kind, rec.path), []).append(rec.entry)
    return [
        HistoryGroup(kind, path, entries, len(entries) > 1 and changed(entries[-2].summary, entries[-1].summary))
        for (kind, path), entries in groups.items()
    ]
