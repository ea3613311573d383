"""Naming what an application meets on a forgotten flow."""

from __future__ import annotations

from probe.core.after_expiry import (
    AfterExpiry,
    AfterObservation,
    AfterOutcome,
    after_expiry,
    classify,
    meaning,
    udp_after_expiry,
)
from probe.core.endings import Ending
from probe.core.model import to_json


def test_an_answer_means_the_mapping_was_revived_on_the_same_port() -> None:
    result = classify(AfterObservation(True, None, 0.01, "1.2.3.4:5000", "1.2.3.4:5000"))
    assert result.outcome is AfterOutcome.REVIVED and result.port_changed is False
    assert to_json(result) == {
        "outcome": "revived",
        "port_changed": False,
        "waited_s": 0.01,
        "detail": "the message was answered: the path re-created the forgotten mapping",
        "late_push_delivered": False,
    }


def test_an_answer_from_another_address_says_the_port_changed() -> None:
    result = classify(AfterObservation(True, None, 0.5, "1.2.3.4:5000", "1.2.3.4:6000"))
    assert result.port_changed is True
    assert "now sees 1.2.3.4:6000, not 1.2.3.4:5000" in result.detail


def test_without_both_addresses_the_port_change_is_unknown() -> None:
    assert classify(AfterObservation(True, None, 0.5, None, "1.2.3.4:6000")).port_changed is None
    assert classify(AfterObservation(True, None, 0.5, "1.2.3.4:5000", None)).port_changed is None


def test_a_late_push_is_reported_only_for_the_lost_push_case() -> None:
    result = classify(AfterObservation(True, None, 0.7, "a:1", "a:1", late_push=True))
    assert result.late_push_delivered is True and "arrived late" in result.detail
    # The late push belongs to the lost-push case only: the quiet case's fields omit it.
    both = to_json(after_expiry(result, result))
    assert both["after_lost_push"]["late_push_delivered"] is True  # type: ignore[index]
    assert "late_push_delivered" not in both


def test_an_unmeasured_quiet_case_says_why_and_keeps_the_lost_push() -> None:
    lost = classify(AfterObservation(False, Ending.RESET, 0.5))
    assert after_expiry(None, lost, "no flow expired") == AfterExpiry(None, None, None, "no flow expired", lost)
    assert to_json(after_expiry(None, None))["outcome"] is None


def test_reset_closed_and_silence_map_to_their_outcomes() -> None:
    assert classify(AfterObservation(False, Ending.RESET, 0.0)).outcome is AfterOutcome.RESET
    assert classify(AfterObservation(False, Ending.CLOSED, 0.0)).outcome is AfterOutcome.CLOSED
    silent = classify(AfterObservation(False, Ending.TIMEOUT, 2.0))
    assert silent.outcome is AfterOutcome.BLACKHOLE and "within 2.0s" in silent.detail
    assert classify(AfterObservation(False, None, 2.0)).outcome is AfterOutcome.BLACKHOLE
    assert classify(AfterObservation(False, Ending.RESET, 0.0)).port_changed is None


def test_a_reset_seen_before_speaking_says_so() -> None:
    result = classify(AfterObservation(False, Ending.RESET, 0.0, ended_before=True))
    assert result.detail == "the connection had already been reset while idle"


def test_every_outcome_has_a_meaning_for_applications() -> None:
    for outcome in AfterOutcome:
        assert meaning(outcome.value)
    assert "lost" in meaning("revived") and "15 minutes" in meaning("blackhole")
    assert meaning("nonsense") == ""


def test_each_outcome_in_full() -> None:
    from probe.core.after_expiry import AfterResult

    assert classify(AfterObservation(True, None, 0.5, "a:1", "a:2", late_push=True)) == AfterResult(
        AfterOutcome.REVIVED,
        True,
        0.5,
        "the message was answered: the path re-created the forgotten mapping (the server now sees a:2, not a:1)"
        "; the push lost in the gap arrived late, retransmitted by the server",
        True,
    )
    assert classify(AfterObservation(False, Ending.RESET, 0.25, late_push=True)) == AfterResult(
        AfterOutcome.RESET,
        None,
        0.25,
        "the message met a reset: the flow was gone at the far end or came back on a new port",
        True,
    )
    assert classify(AfterObservation(False, Ending.CLOSED, 0.125, late_push=True)) == AfterResult(
        AfterOutcome.CLOSED,
        None,
        0.125,
        "the connection had been closed (FIN or close frame), as a proxy does at its idle timeout",
        True,
    )
    assert classify(AfterObservation(False, Ending.TIMEOUT, 2.25, late_push=True)) == AfterResult(
        AfterOutcome.BLACKHOLE,
        None,
        2.25,
        "nothing came back within 2.2s: the path drops the forgotten flow's packets; "
        "without TCP_USER_TIMEOUT or a heartbeat timeout the socket would retransmit for ~15 min",
        True,
    )


def test_waited_is_rounded_to_milliseconds() -> None:
    assert classify(AfterObservation(False, None, 1.23456)).waited_s == 1.235


def test_udp_after_expiry_names_a_new_binding_and_whether_its_address_changed() -> None:
    same = udp_after_expiry(True, "198.19.0.1:40000", "198.19.0.1:40000", 0.01234)
    assert to_json(same) == {
        "outcome": "revived",
        "port_changed": False,
        "waited_s": 0.012,
        "detail": "a new binding on the same public address: the server sees the same client again; "
        "only what it sent in the gap was lost",
        "after_lost_push": None,
    }
    moved = udp_after_expiry(True, "198.19.0.1:40000", "198.19.0.1:51234", 0.02)
    assert moved.outcome is AfterOutcome.REVIVED and moved.port_changed is True
    assert moved.detail == (
        "a new binding on a new public address (198.19.0.1:51234, was 198.19.0.1:40000): the server sees a new "
        "client; QUIC must validate the new path, WireGuard roams to it, what the server sent in the gap was lost"
    )
    lost = udp_after_expiry(False, "198.19.0.1:40000", "198.19.0.1:40000", 3.0)
    assert lost.outcome is AfterOutcome.BLACKHOLE and lost.port_changed is None
    assert lost.detail == "nothing of the datagram reached the server within 3.0s"
    assert udp_after_expiry(True, None, "198.19.0.1:1", 0.1).port_changed is None
    assert udp_after_expiry(True, "198.19.0.1:1", None, 0.1).port_changed is None
