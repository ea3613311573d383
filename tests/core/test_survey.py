"""The survey's pool ledger and exit codes: pure logic, no sockets."""

from __future__ import annotations

from probe.core.evidence import Evidence, FailureMode, IdleTest, Outcome
from probe.core.nat import UNKNOWN
from probe.core.results import DiscoverResult
from probe.core.survey import PathError, PoolShare, SurveyPath, SurveyResult
from probe.errors import ExitCode

KEY = ("server-a", "198.18.0.2")


def test_runs_that_all_fit_get_what_they_ask() -> None:
    share = PoolShare(runs=3)
    granted = [share.size(KEY, 250, 64, lambda: 0)[0] for _ in range(3)]
    assert granted == [64, 64, 64]


def test_a_tight_limit_is_split_and_what_others_planned_is_held_back() -> None:
    share = PoolShare(runs=2)
    first, _ = share.size(KEY, 40, 64, lambda: 0)
    # The server still says 39 free: the first run opened nothing yet.
    second, _ = share.size(KEY, 39, 64, lambda: 0)
    assert first == 20
    assert second == 19
    assert first + second <= 40


def test_connections_already_open_are_not_counted_twice() -> None:
    share = PoolShare(runs=2)
    opened = {"n": 0}
    first, _ = share.size(KEY, 100, 30, lambda: opened["n"])
    opened["n"] = 30  # all open now: the server's own count has them
    second, claim = share.size(KEY, 70, 64, lambda: 0)
    assert first == 30
    assert second == 64
    assert claim.outstanding() == 64


def test_other_servers_and_addresses_do_not_share_a_limit() -> None:
    share = PoolShare(runs=3)
    assert share.size(KEY, 200, 64, lambda: 0)[0] == 64
    # What KEY's run planned is not held back from another server, nor from
    # the same server seen from another of our addresses (IPv6).
    assert share.size(("server-b", "198.18.0.2"), 128, 64, lambda: 0)[0] == 64
    assert share.size(("server-a", "2001:2::2"), 64, 64, lambda: 0)[0] == 64


def test_under_a_tight_limit_the_first_runs_leave_room_for_those_still_to_size() -> None:
    # Which server the others reach is unknown until their welcome, so the
    # even split is taken: slower first paths rather than refused later ones.
    share = PoolShare(runs=3)
    assert share.size(KEY, 64, 64, lambda: 0)[0] == 21
    assert share.size(("server-b", "198.18.0.2"), 64, 64, lambda: 0)[0] == 32
    assert share.size(("server-c", "198.18.0.2"), 64, 64, lambda: 0)[0] == 64


def test_a_released_claim_frees_its_part() -> None:
    share = PoolShare(runs=1)
    _, claim = share.size(KEY, 64, 64, lambda: 0)
    share.release(claim)
    share.runs = 2
    granted, _ = share.size(KEY, 64, 64, lambda: 0)
    assert granted == 64


def _result(upper: float) -> DiscoverResult:
    evidence = Evidence()
    evidence.add(IdleTest(0, upper - 0.2, Outcome.SURVIVED))
    evidence.add(IdleTest(1, upper, Outcome.FAILED, FailureMode.SILENT_DROP))
    return DiscoverResult(
        target="tcp://h:1", transport="tcp", bracket=evidence.bracket(), tests=evidence.tests, wall_s=1.0,
        nat=UNKNOWN, max_idle_s=7800, reason="resolved",
    )  # fmt: skip


def test_exit_codes() -> None:
    ok = SurveyPath("tcp://h:1", 4, 1, result=_result(10.0))
    short = SurveyPath("tcp://h:2", 6, 2, result=_result(3.0))
    lost = SurveyPath("tcp://h:3", None, 3, error=PathError("cannot connect", ExitCode.UNREACHABLE))
    assert SurveyResult((ok, short), 1.0).exit_code() == ExitCode.OK
    assert SurveyResult((ok, short), 1.0).exit_code(expect_min_s=5.0) == ExitCode.FAILED
    assert SurveyResult((ok, lost, short), 1.0).exit_code(expect_min_s=5.0) == ExitCode.UNREACHABLE
    assert SurveyResult((ok, lost), 1.0, interrupted=True).exit_code() == ExitCode.INTERRUPTED


def test_json_keeps_the_order_given_and_each_paths_discover_result() -> None:
    ok = SurveyPath("tcp://h:1", 4, 1, result=_result(10.0))
    lost = SurveyPath("tcp://h:3", None, 3, error=PathError("cannot connect", 3))
    data = SurveyResult((lost, ok), 12.3456, total_s=14.0).to_json()
    assert data["schema"] == "natprobe.survey/1" and data["wall_s"] == 12.346 and data["total_s"] == 14.0
    assert [p["port"] for p in data["paths"]] == [3, 1]
    assert data["paths"][0] == {
        "target": "tcp://h:3", "family": None, "port": 3, "result": None,
        "error": {"message": "cannot connect", "exit_code": 3},
    }  # fmt: skip
    assert data["paths"][1]["result"]["upper_s"] == 10.0
