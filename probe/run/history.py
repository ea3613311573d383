"""Saved results under the user's state directory, one JSON line per result."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import psutil

from probe.core.check import CheckResult
from probe.core.history import HistoryNote, Record, changed, host_of, parse_record, path_key
from probe.core.model import to_json
from probe.core.results import DiscoverResult


def state_file() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "natprobe" / "history.jsonl"


def interface_of(local: str | None) -> str | None:
    """The local interface holding the address natprobe connected from."""
    host = host_of(local)
    if host is None:
        return None
    with contextlib.suppress(ValueError):
        wanted = ipaddress.ip_address(host)
        for name, addrs in psutil.net_if_addrs().items():
            for addr in addrs:
                with contextlib.suppress(ValueError):
                    if ipaddress.ip_address(addr.address.split("%")[0]) == wanted:
                        return name
    return None


def load(file: Path | None = None) -> list[Record]:
    """Every saved record; unreadable lines are skipped, never fatal."""
    path = file or state_file()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    records = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            record = parse_record(json.loads(line))
            if record is not None:
                records.append(record)
    return records


def record(result: DiscoverResult | CheckResult, file: Path | None = None) -> HistoryNote:
    """Append the result and compare it with the last one on the same path."""
    path = file or state_file()
    nat = result.nat
    key = path_key(result.target, nat.observed, interface_of(nat.local))
    new = result.summary()
    previous = next((r for r in reversed(load(path)) if r.kind == new.kind and r.path == key), None)
    saved = Record(datetime.now(UTC).isoformat(timespec="seconds"), new.kind, key, new)
    error = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(to_json(saved)) + "\n")
    except OSError as exc:
        error = str(exc)
    return HistoryNote(
        saved=error is None,
        file=str(path),
        path=key,
        previous=None if previous is None else previous.entry,
        changed=None if previous is None else changed(previous.summary, new),
        error=error,
    )
