"""Nagios/Icinga plugin output, following the monitoring-plugins guidelines.

One line, ``NATPROBE STATUS - text | perfdata``, perfdata as
``'label'=value[UOM];warn;crit;min;max``, and the exit code: 0 OK, 2 CRITICAL
(the flow was dropped, or the target refused or was unreachable: the
guidelines say those are not UNKNOWN), 3 UNKNOWN (usage and internal errors).
"""

from __future__ import annotations

from enum import IntEnum

from probe.core.check import CheckResult
from probe.core.results import DiscoverResult
from probe.core.text import printable


class Status(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


def _num(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def perf(label: str, value: float | None, unit: str = "s", warn: str = "", crit: str = "", low: str = "0") -> str:
    """One perfdata item; a missing value is 'U' (unknown), as the guidelines say."""
    shown = "U" if value is None else f"{_num(value)}{unit}"
    return f"'{label}'={shown};{warn};{crit};{low};".rstrip(";")


def line(status: Status, text: str, perfdata: list[str] | None = None) -> str:
    out = f"NATPROBE {status.name} - {printable(text, 300)}"
    if perfdata:
        out += " | " + " ".join(perfdata)
    return out


def for_check(result: CheckResult) -> tuple[Status, str]:
    idle = float(result.idle_s)
    data = [perf("idle", idle), perf("alive", float(result.alive_s))]
    if result.passed:
        return Status.OK, line(Status.OK, f"an idle of {_num(idle)}s survived on {result.target}", data)
    text = f"an idle of {_num(idle)}s did not survive on {result.target}: {result.failure_mode}"
    return Status.CRITICAL, line(Status.CRITICAL, text, data)


def for_discover(result: DiscoverResult, expect_min_s: float | None) -> tuple[Status, str]:
    found = result.summary()
    lower, upper = found.lower_s, found.upper_s
    crit = "" if expect_min_s is None else f"{_num(expect_min_s)}:"
    data = [perf("lower", lower, crit=crit), perf("upper", upper, crit=crit)]
    if upper is None:
        text = f"no idle timeout seen on {result.target}; idles up to {_num(lower or 0.0)}s survived"
    else:
        text = (
            f"idle timeout on {result.target} between {_num(lower or 0.0)}s and {_num(upper)}s ({found.failure_mode})"
        )
    if expect_min_s is not None and upper is not None and upper < expect_min_s:
        return Status.CRITICAL, line(Status.CRITICAL, f"{text}, below the expected {_num(expect_min_s)}s", data)
    return Status.OK, line(Status.OK, text, data)


def for_error(message: str, usage: bool) -> tuple[Status, str]:
    """A run that ended in an error: usage errors are UNKNOWN, the rest CRITICAL."""
    status = Status.UNKNOWN if usage else Status.CRITICAL
    return status, line(status, message)
