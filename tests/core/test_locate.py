"""Locating the expiring hop from per-TTL outcomes, on simulated rounds."""

from __future__ import annotations

import pytest

from probe.core.locate import Verdict, decide, scope, sentence


@pytest.mark.parametrize(
    ("outcomes", "path", "expected"),
    [
        # NAT at hop 1: probes that reach it (every k >= 1) keep the flow.
        ({1: True, 2: True, 3: True}, 3, Verdict(1, False, True, "located")),
        # NAT at hop 2: k = 1 stops short of it and fails.
        ({1: False, 2: True, 3: True}, 3, Verdict(2, False, True, "located")),
        # State only at the destination: just the full path survives.
        ({1: False, 2: False, 3: True}, 3, Verdict(3, True, True, "located")),
        # Two stateful boxes: the farther one (hop 3 of 4) decides.
        ({1: False, 2: False, 3: True, 4: True}, 4, Verdict(3, False, True, "located")),
    ],
)
def test_clean_rounds_locate_the_hop(outcomes: dict[int, bool], path: int, expected: Verdict) -> None:
    assert decide(outcomes, path, baseline_survived=False) == expected


def test_a_survival_below_the_hop_is_a_contradiction_to_recheck() -> None:
    # k = 1 survived though k = 2 failed: loose pickup or a lost push. The
    # hop is where every larger k survived; k = 1 is to be measured again.
    assert decide({1: True, 2: False, 3: True, 4: True}, 4, False) == Verdict(3, False, False, "inconsistent", (1,))


def test_when_the_full_path_fails_nothing_can_be_located() -> None:
    verdict = decide({1: True, 2: False}, 2, False)
    assert verdict == Verdict(None, False, False, "full_path_failed", (2,))


def test_a_baseline_that_survived_means_the_wait_was_too_short() -> None:
    assert decide({1: True, 2: True}, 2, baseline_survived=True) == Verdict(None, False, True, "nothing_expired")


def test_no_survivor_at_all() -> None:
    assert decide({1: False, 2: False}, 2, False) == Verdict(None, False, True, "none_survived")
    assert decide({}, 2, None) == Verdict(None, False, True, "none_survived")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("192.168.1.1", "private"),
        ("10.0.0.1", "private"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("100.128.0.1", "public"),
        ("8.8.8.8", "public"),
        ("fd00::1", "private"),
        ("2001:4860::1", "public"),
        (None, None),
        ("not-an-ip", None),
    ],
)
def test_scopes(address: str | None, expected: str | None) -> None:
    assert scope(address) == expected


def test_sentences_name_the_hop_its_address_and_what_it_likely_is() -> None:
    assert sentence(Verdict(2, False, True, "located"), "192.168.1.1") == (
        "the state that expires is at hop 2 (192.168.1.1, private: a private network on the way)"
    )
    assert sentence(Verdict(1, False, True, "located"), "192.168.1.1").endswith("private: likely your own router)")
    assert "carrier-grade NAT: ask your provider" in sentence(Verdict(3, False, True, "located"), "100.64.3.1")
    assert sentence(Verdict(4, False, True, "located"), None) == (
        "the state that expires is at hop 4 (address unknown, scope unknown: a hop that did not say its address)"
    )
    assert sentence(Verdict(5, True, True, "located"), "203.0.113.5").startswith(
        "the state that expires is at the destination (hop 5)"
    )
    assert sentence(Verdict(None, False, True, "nothing_expired"), None).startswith("nothing expired")
