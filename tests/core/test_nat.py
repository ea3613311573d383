"""What the two addresses tell: translated or not, port kept or not."""

from __future__ import annotations

import pytest

from probe.core.nat import UNKNOWN, NatFacts, nat_facts, split_addr


@pytest.mark.parametrize(
    ("local", "observed", "detected", "preserved"),
    [
        ("10.0.0.2:5000", "10.0.0.2:5000", False, None),
        ("10.0.0.2:5000", "203.0.113.9:5000", True, True),
        ("10.0.0.2:5000", "203.0.113.9:6000", True, False),
        ("10.0.0.2:5000", "10.0.0.2:6000", True, False),
        ("[fd00::2]:5000", "[2001:db8::9]:5000", True, True),
        ("[fd00::2]:5000", "[fd00::2]:5000", False, None),
        ("", "203.0.113.9:5000", None, None),
        ("10.0.0.2:5000", "nonsense", None, None),
    ],
)
def test_the_addresses_tell_translation_and_port(local: str, observed: str, detected: bool | None,
                                                 preserved: bool | None) -> None:  # fmt: skip
    assert nat_facts(local, observed) == NatFacts(local, observed, detected, preserved)


def test_addresses_split_with_and_without_brackets() -> None:
    assert split_addr("[::1]:80") == ("::1", 80)
    assert split_addr("1.2.3.4:80") == ("1.2.3.4", 80)
    assert split_addr("1.2.3.4:http") is None and split_addr("") is None
    assert nat_facts("", "") == UNKNOWN
