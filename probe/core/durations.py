"""Parse and format durations such as ``500ms``, ``45``, ``45s``, ``1.5m``, ``2h``."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|min|m|h|d)?\s*$", re.IGNORECASE)
#: Compound forms such as ``2h10m`` or ``1m30s``: every part has a unit.
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|min|m|h|d)", re.IGNORECASE)
_COMPOUND = re.compile(r"^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ms|s|min|m|h|d))+$", re.IGNORECASE)


class DurationError(ValueError):
    """A duration string that cannot be understood."""


def parse_duration(text: str) -> float:
    """Return seconds for a duration string; a bare number means seconds."""
    match = _PATTERN.match(text)
    if match is not None:
        seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    elif _COMPOUND.match(text.strip()):
        seconds = sum(float(v) * _UNITS[u.lower()] for v, u in _PART.findall(text))
    else:
        raise DurationError(
            f"invalid duration {text!r}: use a number with an optional unit, e.g. 500ms, 45s, 1.5m, 2h, 2h10m"
        )
    if not math.isfinite(seconds):
        raise DurationError(f"invalid duration {text!r}: too large")
    return seconds


def format_duration(seconds: float | None) -> str:
    """A short human form: ``850ms``, ``42.3s``, ``5m 50s``, ``2h 04m``."""
    if seconds is None:
        return "-"
    if seconds < 1.0:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60.0:
        return f"{seconds:.1f}s"
    if seconds < 3600.0:
        minutes, secs = divmod(seconds, 60.0)
        return f"{int(minutes)}m {secs:04.1f}s"
    hours, rest = divmod(seconds, 3600.0)
    return f"{int(hours)}h {int(rest // 60):02d}m"
