"""Metrics from probe results, without I/O (Prometheus conventions).

Base units, ``_seconds`` and ``_total`` suffixes, one ``probe`` label holding
the job's name, and no label whose values grow without bound. The exporter and
``--textfile`` both turn these families into the text exposition format with
prometheus_client.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from probe.core.check import CheckResult
from probe.core.evidence import Bracket
from probe.core.results import DiscoverResult
from probe.core.survey import SurveyPath, SurveyResult

#: A probe's last result, of its kind.
ProbeResult = CheckResult | DiscoverResult | SurveyResult

CACHED = "Cached from the probe's last run, which may be minutes old"


@dataclass
class Family:
    name: str
    kind: str  # "gauge" or "counter" (name without _total for counters, as prometheus_client wants)
    help: str
    #: (labels, value) pairs.
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)


@dataclass
class ProbeState:
    """What the exporter remembers of one probe between runs."""

    name: str
    kind: str  # "check", "discover" or "survey"
    result: ProbeResult | None = None
    last_run_at: float | None = None
    last_success_at: float | None = None
    duration_s: float | None = None
    runs: int = 0
    errors: int = 0
    last_error: str | None = None
    #: The configured interval (the exporter's), for "has not run" alerts.
    every_s: float | None = None

    def record(self, started: float, ended: float, result: ProbeResult | None, error: str | None) -> None:
        """One finished run: a result, or the error that ended it."""
        self.runs += 1
        self.last_run_at = started
        self.duration_s = ended - started
        if error is not None:
            self.errors += 1
            self.last_error = error
            self.result = None
            return
        self.last_error = None
        self.result = result
        if result is not None and succeeded(result):
            self.last_success_at = started


def succeeded(result: ProbeResult) -> bool:
    """A check whose flow survived; a discovery that finished and met its
    expect_min; a survey whose every path did."""
    if isinstance(result, CheckResult):
        return result.passed
    if isinstance(result, SurveyResult):
        return not result.interrupted and all(p.result is not None and succeeded(p.result) for p in result.paths)
    return not result.interrupted and result.reason != "expect_min"


def path_labels(probe: str, path: SurveyPath) -> dict[str, str]:
    """A survey path's labels: its target and family, both from the config,
    so bounded. "any" where the proxy or the resolver chose the family."""
    family = path.family
    return {"probe": probe, "path": path.target, "family": "any" if family is None else str(family)}


def families(states: list[ProbeState], version: str) -> list[Family]:
    """Every metric family, fresh from the probes' states."""
    out = {
        name: Family(name, kind, text)
        for name, kind, text in (
            (
                "natprobe_check_success",
                "gauge",
                f"1 if the last check's push arrived after the idle, else 0. {CACHED}.",
            ),
            ("natprobe_check_idle_seconds", "gauge", f"Idle the last check tested. {CACHED}."),
            (
                "natprobe_discover_lower_seconds",
                "gauge",
                f"Longest idle the last discovery saw survive. {CACHED}.",
            ),
            (
                "natprobe_discover_upper_seconds",
                "gauge",
                f"Shortest idle the last discovery saw fail; absent when none failed. {CACHED}.",
            ),
            (
                "natprobe_discover_failure_mode",
                "gauge",
                f"How flows died at the timeout: 1 for the mode label seen (silent_drop, reset, closed). {CACHED}.",
            ),
            (
                "natprobe_discover_state_lower_seconds",
                "gauge",
                f"UDP: longest idle the last discovery saw survive, per flow state. {CACHED}.",
            ),
            (
                "natprobe_discover_state_upper_seconds",
                "gauge",
                f"UDP: shortest idle the last discovery saw fail, per flow state; absent when none failed. {CACHED}.",
            ),
            (
                "natprobe_discover_inbound_refresh",
                "gauge",
                f"UDP: 1 if the server's traffic alone kept a binding alive, 0 if not; absent if unmeasured. {CACHED}.",
            ),
            (
                "natprobe_survey_path_success",
                "gauge",
                f"Survey: 1 if the path (target and family) was measured, 0 if not. {CACHED}.",
            ),
            ("natprobe_last_run_timestamp_seconds", "gauge", "When the probe's last run started (Unix time)."),
            (
                "natprobe_last_success_timestamp_seconds",
                "gauge",
                "When the last successful run started (Unix time): a check that passed, a discovery that finished, "
                "a survey whose every path did.",
            ),
            ("natprobe_run_duration_seconds", "gauge", f"How long the last run took. {CACHED}."),
            ("natprobe_probe_interval_seconds", "gauge", "How often the exporter runs the probe (before jitter)."),
            ("natprobe_runs", "counter", "Runs finished (since the exporter started, or carried in the textfile)."),
            ("natprobe_run_errors", "counter", "Runs that ended in an error (unreachable, refused, protocol)."),
            ("natprobe_build_info", "gauge", "natprobe's version, as a label; always 1."),
        )
    }
    out["natprobe_build_info"].samples.append(({"version": version}, 1.0))
    for state in states:
        label = {"probe": state.name}
        out["natprobe_runs"].samples.append((label, float(state.runs)))
        out["natprobe_run_errors"].samples.append((label, float(state.errors)))
        if state.last_run_at is not None:
            out["natprobe_last_run_timestamp_seconds"].samples.append((label, state.last_run_at))
        if state.last_success_at is not None:
            out["natprobe_last_success_timestamp_seconds"].samples.append((label, state.last_success_at))
        if state.duration_s is not None:
            out["natprobe_run_duration_seconds"].samples.append((label, state.duration_s))
        if state.every_s is not None:
            out["natprobe_probe_interval_seconds"].samples.append((label, state.every_s))
        result = state.result
        if result is None:
            continue
        if isinstance(result, CheckResult):
            out["natprobe_check_success"].samples.append((label, 1.0 if result.passed else 0.0))
            out["natprobe_check_idle_seconds"].samples.append((label, float(result.idle_s)))
            continue
        if isinstance(result, SurveyResult):
            # Each path as a discovery of its own, told apart by path and family.
            for path in result.paths:
                labels = path_labels(state.name, path)
                measured = path.result
                out["natprobe_survey_path_success"].samples.append((labels, 0.0 if measured is None else 1.0))
                if measured is not None:
                    _discover_samples(out, labels, measured)
            continue
        _discover_samples(out, label, result)
    return list(out.values())


def _bounds(out: dict[str, Family], label: dict[str, str], bracket: Bracket, prefix: str) -> None:
    # As the JSON shows them: to the millisecond.
    for value, name in ((bracket.lower, f"{prefix}_lower_seconds"), (bracket.upper, f"{prefix}_upper_seconds")):
        if value is not None:
            out[name].samples.append((label, round(value, 3)))


def _discover_samples(out: dict[str, Family], label: dict[str, str], result: DiscoverResult) -> None:
    """One discover result's samples, under ``label``."""
    _bounds(out, label, result.bracket, "natprobe_discover")
    mode = result.bracket.failure_mode
    if mode is not None:
        out["natprobe_discover_failure_mode"].samples.append(({**label, "mode": mode.value}, 1.0))
    for state_name, state_result in (result.states or {}).items():
        _bounds(out, {**label, "state": state_name}, state_result.bracket, "natprobe_discover_state")
    refresh = result.inbound_refresh
    if refresh is not None:
        out["natprobe_discover_inbound_refresh"].samples.append((label, 1.0 if refresh else 0.0))
