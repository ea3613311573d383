"""History keys and comparisons, durations and terminal-safe text."""

from __future__ import annotations

import pytest

from probe.core.durations import DurationError, format_duration, parse_duration
from probe.core.evidence import FailureMode
from probe.core.history import CheckSummary, DiscoverSummary, PathKey, Record, changed, parse_record, path_key
from probe.core.model import to_json
from probe.core.text import printable
from tests.factories import check_result, discover_result


def test_path_key_drops_the_port_of_the_observed_address() -> None:
    assert path_key("tcp://h:1", "203.0.113.9:5000", "eth0") == PathKey("tcp://h:1", "203.0.113.9", "eth0")
    assert path_key("t", "[2001:db8::1]:5000", None).observed_ip == "2001:db8::1"
    assert path_key("t", None, None) == PathKey("t", None, None)
    assert path_key("t", "", "x").observed_ip is None


def test_a_summary_keeps_the_fields_that_describe_a_result() -> None:
    found = discover_result(1.0, 2.0, FailureMode.RESET)
    assert to_json(found.summary()) == {
        "lower_s": 1.0, "upper_s": 2.0, "estimate_s": 1.5, "failure_mode": "reset", "consistent": True,
        "reason": "resolved",
    }  # fmt: skip
    check = check_result(idle_s=9.0, passed=False, failure_mode="reset", client_originated=True)
    assert to_json(check.summary()) == {
        "idle_s": 9.0,
        "passed": False,
        "failure_mode": "reset",
        "client_originated": True,
    }


def test_a_saved_line_reads_back_leniently() -> None:
    line = {"at": "2026-01-01T00:00:00+00:00", "kind": "check", "path": {"target": "t"}, "summary": {"idle_s": 5}}
    record = parse_record(line)
    assert record == Record(line["at"], "check", PathKey("t", None, None), CheckSummary(5, None, None, None))
    assert to_json(record.entry) == {"at": line["at"], "idle_s": 5, "passed": None, "failure_mode": None,
                                     "client_originated": None}  # fmt: skip
    for bad in ([], {**line, "kind": "hold"}, {**line, "path": "t"}, {**line, "path": {}}, {**line, "summary": 1}):
        assert parse_record(bad) is None


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ((5, True), (5, False), True),
        ((5, True), (5, True), False),
        ((5, True), (6, False), False),
    ],
)
def test_a_check_changed_when_the_same_idle_got_another_verdict(
    before: tuple[float, bool], after: tuple[float, bool], expected: bool
) -> None:
    def entry(values: tuple[float, bool]) -> CheckSummary:
        return CheckSummary(values[0], values[1], None, None)

    assert changed(entry(before), entry(after)) is expected
    # A check and a discovery are never the same behaviour.
    assert changed(entry(before), DiscoverSummary(1.0, 2.0, 1.5, None, True, "resolved")) is True


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        # overlapping brackets, same mode: the same path
        ((1.0, 2.0, "silent_drop"), (1.5, 2.5, "silent_drop"), False),
        ((1.0, 2.0, "silent_drop"), (2.0, 3.0, "silent_drop"), False),  # touching
        # disjoint either way
        ((1.0, 2.0, "silent_drop"), (2.1, 3.0, "silent_drop"), True),
        ((3.0, 4.0, "silent_drop"), (1.0, 2.9, "silent_drop"), True),
        # another failure mode
        ((1.0, 2.0, "silent_drop"), (1.0, 2.0, "reset"), True),
        # a timeout appeared or disappeared
        ((1.0, None, None), (1.0, 2.0, None), True),
        ((1.0, 2.0, None), (1.0, None, None), True),
        ((1.0, None, None), (5.0, None, None), False),
        # no lower bound counts as 0
        ((None, 2.0, None), (None, 1.0, None), False),
        ((None, 0.5, None), (1.0, 2.0, None), True),
    ],
)
def test_a_discovery_changed_when_brackets_do_not_overlap_or_the_mode_differs(
    before: tuple[float | None, float | None, str | None],
    after: tuple[float | None, float | None, str | None],
    expected: bool,
) -> None:
    def entry(values: tuple[float | None, float | None, str | None]) -> DiscoverSummary:
        return DiscoverSummary(values[0], values[1], None, values[2], True, "resolved")

    assert changed(entry(before), entry(after)) is expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5), ("45", 45.0), ("45s", 45.0), ("1.5m", 90.0), ("2min", 120.0), ("2h", 7200.0),
        ("1d", 86400.0), (".5s", 0.5), ("3.", 3.0), (" 7 s ", 7.0), ("2H", 7200.0), ("2h10m", 7800.0),
        ("1m30s", 90.0), ("1h1ms", 3600.001),
    ],
)  # fmt: skip
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_bad_durations_say_how_to_write_one() -> None:
    with pytest.raises(DurationError) as info:
        parse_duration("soon")
    assert str(info.value) == (
        "invalid duration 'soon': use a number with an optional unit, e.g. 500ms, 45s, 1.5m, 2h, 2h10m"
    )
    for bad in ("", "-1s", "2h 10m", "1x", "h"):
        with pytest.raises(DurationError):
            parse_duration(bad)
    with pytest.raises(DurationError, match="too large"):
        parse_duration("9" * 400)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"), (0.0, "0ms"), (0.8504, "850ms"), (0.9999, "1000ms"), (1.0, "1.0s"), (42.34, "42.3s"),
        (59.94, "59.9s"), (60.0, "1m 00.0s"), (350.0, "5m 50.0s"), (3599.0, "59m 59.0s"), (3600.0, "1h 00m"),
        (7440.0, "2h 04m"), (90000.0, "25h 00m"),
    ],
)  # fmt: skip
def test_durations_format(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_printable_escapes_control_and_separator_characters_and_cuts() -> None:
    assert printable("plain text, with spaces") == "plain text, with spaces"
    assert printable("a\x1b[2Jb\n\t\x07") == "a\\x1b[2Jb\\n\\t\\x07"
    assert printable("x\u2028y\u00a0z") == "x\\u2028y\\xa0z"
    assert printable("é ü 中") == "é ü 中"
    assert printable("abcdef", limit=3) == "abc"
    assert printable("a" * 300) == "a" * 200
    assert printable(42) == "42"


def test_bracket_comparison_edges() -> None:
    def entry(lower: float | None, upper: float | None) -> DiscoverSummary:
        return DiscoverSummary(lower, upper, None, None, True, "resolved")

    # No lower bound is 0, not 1: an upper of 0.8 still overlaps it.
    assert changed(entry(None, 2.0), entry(None, 0.8)) is False
    assert changed(entry(None, 0.8), entry(None, 2.0)) is False
    # Touching in the other order is an overlap too.
    assert changed(entry(2.0, 3.0), entry(1.0, 2.0)) is False


def test_format_duration_counts_whole_minutes_past_the_hour() -> None:
    assert format_duration(3600.0 + 59.9) == "1h 00m"
    assert format_duration(3600.0 + 119.0) == "1h 01m"
