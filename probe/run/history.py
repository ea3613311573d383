"""Saved results under the user's state directory, one JSON line per result."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from probe.core.history import changed, path_key, summary


def state_file() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "natprobe" / "history.jsonl"


def interface_of(local: str | None) -> str | None:
    """The local interface holding the address natprobe connected from."""
    if not local:
        return None
    host = local[1:].split("]")[0] if local.startswith("[") else local.rsplit(":", 1)[0]
    with contextlib.suppress(ValueError):
        wanted = ipaddress.ip_address(host)
        for name, addrs in psutil.net_if_addrs().items():
            for addr in addrs:
                with contextlib.suppress(ValueError):
                    if ipaddress.ip_address(addr.address.split("%")[0]) == wanted:
                        return name
    return None


def load(file: Path | None = None) -> list[dict[str, Any]]:
    """Every saved record; unreadable lines are skipped, never fatal."""
    path = file or state_file()
    records = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict) and "path" in record and "summary" in record:
                records.append(record)
    return records


def record(kind: str, result: dict[str, Any], file: Path | None = None) -> dict[str, Any]:
    """Append the result and compare it with the last one on the same path."""
    path = file or state_file()
    nat = result.get("nat") or {}
    key = path_key(result["target"], nat.get("observed"), interface_of(nat.get("local")))
    new = summary(kind, result)
    previous = next(
        (r for r in reversed(load(path)) if r.get("kind") == kind and r.get("path") == key),
        None,
    )
    entry = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "kind": kind, "path": key, "summary": new}
    info: dict[str, Any] = {"saved": False, "file": str(path), "path": key, "previous": None, "changed": None}
    if previous is not None:
        info["previous"] = {"at": previous.get("at"), **previous["summary"]}
        info["changed"] = changed(kind, previous["summary"], new)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
        info["saved"] = True
    except OSError as exc:
        info["error"] = str(exc)
    return info


def grouped(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records per path and kind, oldest first, with whether the last run changed."""
    groups: dict[str, dict[str, Any]] = {}
    for rec in records:
        ident = json.dumps([rec.get("kind"), rec["path"]], sort_keys=True)
        group = groups.setdefault(ident, {"kind": rec.get("kind"), "path": rec["path"], "entries": []})
        group["entries"].append({"at": rec.get("at"), **rec["summary"]})
    for group in groups.values():
        entries = group["entries"]
        group["changed"] = len(entries) > 1 and changed(group["kind"], entries[-2], entries[-1])
    return list(groups.values())
