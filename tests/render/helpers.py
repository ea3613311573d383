"""A discover result to render: the same one in every renderer test."""

from __future__ import annotations

from probe.core.after_expiry import AfterExpiry, AfterOutcome, AfterResult
from probe.core.evidence import Evidence, FailureMode, IdleTest, Outcome
from probe.core.nat import UNKNOWN, NatFacts
from probe.core.results import Connections, DiscoverResult, ServerView
from probe.core.survey import PathError, SurveyPath, SurveyResult


def sample_discover_result() -> DiscoverResult:
    evidence = Evidence()
    for idle, ok in [(1.9, True), (4.0, True), (6.2, False), (4.4, False), (4.9, False)]:
        outcome = Outcome.SURVIVED if ok else Outcome.FAILED
        evidence.add(IdleTest(0, idle, outcome, None if ok else FailureMode.SILENT_DROP, result_at=idle))
    return DiscoverResult(
        target="tcp://198.18.0.5:4040",
        transport="tcp",
        bracket=evidence.bracket(),
        tests=evidence.tests,
        wall_s=7.4,
        nat=NatFacts("10.0.0.2:5000", "203.0.113.9:5000", True, True),
        max_idle_s=7800,
        reason="resolved",
        connections=Connections(max_open=57, opened=57, asked=63, pool=63),
        after_expiry=AfterExpiry(
            AfterOutcome.REVIVED,
            False,
            0.01,
            "answered",
            AfterResult(AfterOutcome.REVIVED, False, 0.7, "answered", True),
        ),
        server_view=ServerView(unacknowledged_pushes=3),
    )


BLACKHOLE = AfterExpiry(AfterOutcome.BLACKHOLE, None, 2.0, "nothing came back")


def sample_survey() -> SurveyResult:
    """Four paths: two families of one name, a long wss:// target, one refused."""

    def measured(lower: float, upper: float) -> DiscoverResult:
        evidence = Evidence()
        evidence.add(IdleTest(0, lower, Outcome.SURVIVED))
        evidence.add(IdleTest(1, upper, Outcome.FAILED, FailureMode.SILENT_DROP))
        return DiscoverResult(
            target="tcp://probe.example.net:4040", transport="tcp", bracket=evidence.bracket(), tests=evidence.tests,
            wall_s=1.0, nat=UNKNOWN, max_idle_s=7800, reason="resolved", after_expiry=BLACKHOLE,
        )  # fmt: skip

    refused = PathError("connection to probe.example.net:5222 refused", 3)
    return SurveyResult(
        (
            SurveyPath("tcp://probe.example.net:4040", 4, 4040, measured(7190.0, 7202.5)),
            SurveyPath("tcp://probe.example.net:4040", 6, 4040, measured(3.0, 3.3)),
            SurveyPath("wss://probe.example.net/natprobe", 4, 443, measured(59.5, 60.6)),
            SurveyPath("tcp://probe.example.net:5222", None, 5222, error=refused),
        ),
        7300.2,
    )
