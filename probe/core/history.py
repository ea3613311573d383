"""Results over time, per network path, without I/O: keys, summaries, comparison."""

from __future__ import annotations

from typing import Any


def path_key(target: str, observed: str | None, interface: str | None) -> dict[str, str | None]:
    """A path: the target, the public address the server saw (without the
    port, which changes per connection) and the local interface used."""
    observed_ip = None
    if observed:
        observed_ip = observed[1:].split("]")[0] if observed.startswith("[") else observed.rsplit(":", 1)[0]
    return {"target": target, "observed_ip": observed_ip, "interface": interface}


def summary(kind: str, result: dict[str, Any]) -> dict[str, Any]:
    keys: tuple[str, ...]
    if kind == "discover":
        keys = ("lower_s", "upper_s", "estimate_s", "failure_mode", "consistent", "reason")
    else:
        keys = ("idle_s", "passed", "failure_mode", "client_originated")
    return {key: result.get(key) for key in keys}


def changed(kind: str, before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Did the path behave differently? Brackets that do not overlap, another
    failure mode, or another verdict at the same idle."""
    if kind == "check":
        return bool(before.get("idle_s") == after.get("idle_s") and before.get("passed") != after.get("passed"))
    if before.get("failure_mode") != after.get("failure_mode"):
        return True
    lo1, hi1 = before.get("lower_s") or 0.0, before.get("upper_s")
    lo2, hi2 = after.get("lower_s") or 0.0, after.get("upper_s")
    if hi1 is None or hi2 is None:
        return (hi1 is None) != (hi2 is None)
    return bool(hi1 < lo2 or hi2 < lo1)
