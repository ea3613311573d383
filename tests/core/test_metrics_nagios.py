"""Metrics from results, and Nagios plugin lines, exactly."""

from __future__ import annotations

import pytest

from probe.core import nagios
from probe.core.evidence import FailureMode
from probe.core.metrics import ProbeState, families, succeeded
from probe.core.survey import PathError, SurveyPath, SurveyResult
from tests.factories import check_result, discover_result

CHECK = check_result()
FOUND = discover_result(9.9, 10.1)


def samples(states: list[ProbeState]) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {f.name: f.samples for f in families(states, "9.9.9")}


def test_a_check_and_a_discovery_become_their_metrics() -> None:
    check = ProbeState("short", "check")
    check.record(100.0, 220.5, CHECK, None)
    found = ProbeState("find", "discover")
    found.record(50.0, 62.0, FOUND, None)
    got = samples([check, found])
    short, find = {"probe": "short"}, {"probe": "find"}
    assert got["natprobe_check_success"] == [(short, 1.0)]
    assert got["natprobe_check_idle_seconds"] == [(short, 120.0)]
    assert got["natprobe_discover_lower_seconds"] == [(find, 9.9)]
    assert got["natprobe_discover_upper_seconds"] == [(find, 10.1)]
    assert got["natprobe_discover_failure_mode"] == [({"probe": "find", "mode": "silent_drop"}, 1.0)]
    assert got["natprobe_last_run_timestamp_seconds"] == [(short, 100.0), (find, 50.0)]
    assert got["natprobe_last_success_timestamp_seconds"] == [(short, 100.0), (find, 50.0)]
    assert got["natprobe_run_duration_seconds"] == [(short, 120.5), (find, 12.0)]
    assert got["natprobe_runs"] == [(short, 1.0), (find, 1.0)]
    assert got["natprobe_run_errors"] == [(short, 0.0), (find, 0.0)]
    assert got["natprobe_build_info"] == [({"version": "9.9.9"}, 1.0)]
    assert got["natprobe_probe_interval_seconds"] == []  # one-shot runs have none
    scheduled = ProbeState("s", "check", every_s=300.0)
    assert samples([scheduled])["natprobe_probe_interval_seconds"] == [({"probe": "s"}, 300.0)]


def test_every_family_is_named_by_convention_and_says_it_is_cached() -> None:
    for family in families([], "1"):
        assert family.name.startswith("natprobe_") and family.kind in ("gauge", "counter")
        assert not family.name.endswith("_total")  # prometheus_client adds it to counters
        if family.name in (
            "natprobe_check_success",
            "natprobe_discover_lower_seconds",
            "natprobe_run_duration_seconds",
        ):
            assert "Cached from the probe's last run" in family.help


def test_a_failed_check_an_error_and_an_open_bracket() -> None:
    state = ProbeState("p", "check")
    state.record(10.0, 11.0, check_result(passed=False), None)
    assert samples([state])["natprobe_check_success"] == [({"probe": "p"}, 0.0)]
    assert samples([state])["natprobe_last_success_timestamp_seconds"] == []
    state.record(20.0, 20.5, None, "connection refused")
    got = samples([state])
    assert got["natprobe_check_success"] == [] and got["natprobe_run_errors"] == [({"probe": "p"}, 1.0)]
    assert got["natprobe_runs"] == [({"probe": "p"}, 2.0)] and state.last_error == "connection refused"
    found = ProbeState("d", "discover")
    found.record(0.0, 1.0, discover_result(9.9, None), None)
    got = samples([found])
    assert got["natprobe_discover_upper_seconds"] == [] and got["natprobe_discover_failure_mode"] == []
    assert got["natprobe_last_success_timestamp_seconds"] == [({"probe": "d"}, 0.0)]


def test_what_counts_as_success() -> None:
    assert succeeded(check_result()) and not succeeded(check_result(passed=False))
    assert succeeded(discover_result())
    assert not succeeded(discover_result(reason="expect_min"))
    assert not succeeded(discover_result(reason="budget", interrupted=True))


def test_nagios_check_lines() -> None:
    assert nagios.for_check(CHECK) == (
        nagios.Status.OK,
        "NATPROBE OK - an idle of 120s survived on tcp://h:4040 | 'idle'=120s;;;0 'alive'=120.4s;;;0",
    )
    failed = check_result(passed=False, failure_mode="silent_drop", alive_s=121.0)
    assert nagios.for_check(failed) == (
        nagios.Status.CRITICAL,
        "NATPROBE CRITICAL - an idle of 120s did not survive on tcp://h:4040: silent_drop | "
        "'idle'=120s;;;0 'alive'=121s;;;0",
    )


def test_nagios_discover_lines_with_and_without_expect_min() -> None:
    assert nagios.for_discover(FOUND, None) == (
        nagios.Status.OK,
        "NATPROBE OK - idle timeout on tcp://h:4040 between 9.9s and 10.1s (silent_drop) | "
        "'lower'=9.9s;;;0 'upper'=10.1s;;;0",
    )
    status, text = nagios.for_discover(FOUND, 300.0)
    assert status is nagios.Status.CRITICAL
    assert text.endswith(", below the expected 300s | 'lower'=9.9s;;300:;0 'upper'=10.1s;;300:;0")
    open_ended = discover_result(9.9, None)
    assert nagios.for_discover(open_ended, 5.0) == (
        nagios.Status.OK,
        "NATPROBE OK - no idle timeout seen on tcp://h:4040; idles up to 9.9s survived | "
        "'lower'=9.9s;;5:;0 'upper'=U;;5:;0",
    )


@pytest.mark.parametrize(("usage", "status"), [(True, nagios.Status.UNKNOWN), (False, nagios.Status.CRITICAL)])
def test_nagios_errors(usage: bool, status: nagios.Status) -> None:
    assert nagios.for_error("connection to h:1 refused\x1b[2J", usage) == (
        status,
        f"NATPROBE {status.name} - connection to h:1 refused\\x1b[2J",
    )


def test_help_texts_in_full() -> None:
    helps = {f.name: f.help for f in families([], "1")}
    cached = "Cached from the probe's last run, which may be minutes old."
    assert helps == {
        "natprobe_check_success": f"1 if the last check's push arrived after the idle, else 0. {cached}",
        "natprobe_check_idle_seconds": f"Idle the last check tested. {cached}",
        "natprobe_discover_lower_seconds": f"Longest idle the last discovery saw survive. {cached}",
        "natprobe_discover_upper_seconds": "Shortest idle the last discovery saw fail; absent when none failed. "
        f"{cached}",
        "natprobe_discover_failure_mode": "How flows died at the timeout: 1 for the mode label seen (silent_drop, "
        f"reset, closed). {cached}",
        "natprobe_discover_state_lower_seconds": "UDP: longest idle the last discovery saw survive, per flow state. "
        f"{cached}",
        "natprobe_discover_state_upper_seconds": "UDP: shortest idle the last discovery saw fail, per flow state; "
        f"absent when none failed. {cached}",
        "natprobe_discover_inbound_refresh": "UDP: 1 if the server's traffic alone kept a binding alive, 0 if not; "
        f"absent if unmeasured. {cached}",
        "natprobe_survey_path_success": f"Survey: 1 if the path (target and family) was measured, 0 if not. {cached}",
        "natprobe_last_run_timestamp_seconds": "When the probe's last run started (Unix time).",
        "natprobe_last_success_timestamp_seconds": "When the last successful run started (Unix time): a check that "
        "passed, a discovery that finished, a survey whose every path did.",
        "natprobe_run_duration_seconds": f"How long the last run took. {cached}",
        "natprobe_probe_interval_seconds": "How often the exporter runs the probe (before jitter).",
        "natprobe_runs": "Runs finished (since the exporter started, or carried in the textfile).",
        "natprobe_run_errors": "Runs that ended in an error (unreachable, refused, protocol).",
        "natprobe_build_info": "natprobe's version, as a label; always 1.",
    }
    kinds = {f.name: f.kind for f in families([], "1")}
    assert [n for n, k in kinds.items() if k == "counter"] == ["natprobe_runs", "natprobe_run_errors"]


def test_a_survey_exports_each_path_as_a_discovery_labelled_by_path_and_family() -> None:
    measured = (
        SurveyPath("tcp://h:4040", 4, 4040, FOUND),
        SurveyPath("tcp://h:4040", 6, 4040, discover_result(9.9, 9.5)),
    )
    survey = SurveyResult((*measured, SurveyPath("tcp://h:5222", None, 5222, None, PathError("refused", 3))), 9.0)
    state = ProbeState("paths", "survey")
    state.record(0.0, 9.0, survey, None)
    got = samples([state])
    v4 = {"probe": "paths", "path": "tcp://h:4040", "family": "4"}
    v6 = {**v4, "family": "6"}
    lost = {"probe": "paths", "path": "tcp://h:5222", "family": "any"}
    assert got["natprobe_survey_path_success"] == [(v4, 1.0), (v6, 1.0), (lost, 0.0)]
    assert got["natprobe_discover_upper_seconds"] == [(v4, 10.1), (v6, 9.5)]
    assert got["natprobe_discover_lower_seconds"] == [(v4, 9.9), (v6, 9.9)]
    # One path unmeasured: the run is no success.
    assert state.last_success_at is None
    state.record(10.0, 19.0, SurveyResult(measured, 9.0), None)
    assert state.last_success_at == 10.0


@pytest.mark.parametrize("mode", ["silent_drop", "reset", "closed"])
def test_every_failure_mode_is_exported(mode: str) -> None:
    state = ProbeState("d", "discover")
    state.record(0.0, 1.0, discover_result(9.9, 10.1, FailureMode(mode)), None)
    assert samples([state])["natprobe_discover_failure_mode"] == [({"probe": "d", "mode": mode}, 1.0)]


@pytest.mark.parametrize(("refresh", "value"), [(True, [1.0]), (False, [0.0]), (None, [])])
def test_a_udp_discovery_exports_each_state_and_inbound_refresh(refresh: bool | None, value: list[float]) -> None:
    states = {"unreplied": (29.5, 30.2), "replied": (29.6, 30.1), "stream": (200.0, None)}
    state = ProbeState("u", "discover")
    state.record(0.0, 1.0, discover_result(states=states, inbound_refresh=refresh), None)
    got = samples([state])
    assert got["natprobe_discover_state_lower_seconds"] == [
        ({"probe": "u", "state": "unreplied"}, 29.5),
        ({"probe": "u", "state": "replied"}, 29.6),
        ({"probe": "u", "state": "stream"}, 200.0),
    ]
    assert got["natprobe_discover_state_upper_seconds"] == [
        ({"probe": "u", "state": "unreplied"}, 30.2),
        ({"probe": "u", "state": "replied"}, 30.1),
    ]
    assert got["natprobe_discover_inbound_refresh"] == [({"probe": "u"}, v) for v in value]
    tcp = ProbeState("t", "discover")
    tcp.record(0.0, 1.0, FOUND, None)
    assert samples([tcp])["natprobe_discover_state_lower_seconds"] == []
