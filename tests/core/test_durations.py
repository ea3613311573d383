from __future__ import annotations

import pytest

from probe.core.durations import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("45", 45.0), ("45s", 45.0), ("1.5m", 90.0), ("2h", 7200.0), ("2h10m", 7800.0), ("1m30s", 90.0)],
)
def test_parses_the_documented_forms(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "-1", "5x", "1e400", "nan", "inf", "2h 10m", "9" * 400])
def test_rejects_bad_input_with_a_clear_message(text: str) -> None:
    with pytest.raises(DurationError, match="invalid duration"):
        parse_duration(text)


def test_formats_for_people() -> None:
    assert format_duration(0.25) == "250ms"
    assert format_duration(42.34) == "42.3s"
    assert format_duration(350) == "5m 50.0s"
    assert format_duration(7440) == "2h 04m"
    assert format_duration(None) == "-"
