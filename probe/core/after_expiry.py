"""What an application meets when it speaks on a flow the path has forgotten.

Sans-I/O: the runner sends one message on a forgotten connection and reports
what it observed (an answer, a reset, a close, or silence until its bounded
wait ran out); this module names the outcome and says what it means.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from probe.core.endings import Ending


class AfterOutcome(StrEnum):
    #: The answer came: the box re-created the mapping from the client's packet.
    REVIVED = "revived"
    #: A reset: the flow came back on a new public port and the server did not
    #: know it, or the server's side was already gone.
    RESET = "reset"
    #: Nothing came back before the bounded wait ended: the box drops packets of
    #: the forgotten flow, and the client's TCP would retransmit for minutes.
    BLACKHOLE = "blackhole"
    #: The connection was closed (FIN or WebSocket close), as proxies do.
    CLOSED = "closed"


@dataclass(frozen=True)
class AfterObservation:
    """What the runner saw after sending its one message."""

    #: The answer arrived.
    answered: bool
    #: How the connection ended instead: "reset", "closed", "timeout" (the
    #: socket's short TCP_USER_TIMEOUT fired) or None (no end seen).
    ended: Ending | None
    waited_s: float
    #: Address the server saw in welcome, and in its answer (None if none).
    observed_before: str | None = None
    observed_after: str | None = None
    #: A push the server had sent into the gap arrived after all.
    late_push: bool = False
    #: The connection had ended before anything was sent on it.
    ended_before: bool = False


@dataclass(frozen=True)
class AfterResult:
    """(schema: ``after_expiry.after_lost_push``) What one message met."""

    outcome: AfterOutcome
    port_changed: bool | None
    waited_s: float
    detail: str
    #: The push the server had sent into the gap arrived late.
    late_push_delivered: bool = False


@dataclass(frozen=True)
class AfterExpiry:
    """(schema: ``after_expiry``) What an application meets on a forgotten
    flow: once on the quiet connection, nobody having spoken (``outcome``
    None where none was measured), and once after a lost push."""

    outcome: AfterOutcome | None
    port_changed: bool | None
    waited_s: float | None
    detail: str
    after_lost_push: AfterResult | None = None


def after_expiry(quiet: AfterResult | None, lost: AfterResult | None, unmeasured: str = "not measured") -> AfterExpiry:
    """The two cases as one part; ``unmeasured`` says why the quiet one is missing."""
    if quiet is None:
        return AfterExpiry(None, None, None, unmeasured, lost)
    return AfterExpiry(quiet.outcome, quiet.port_changed, quiet.waited_s, quiet.detail, lost)


def classify(obs: AfterObservation) -> AfterResult:
    """Name what the application met."""
    waited = round(obs.waited_s, 3)
    if obs.answered:
        changed = (
            None
            if obs.observed_before is None or obs.observed_after is None
            else obs.observed_before != obs.observed_after
        )
        detail = "the message was answered: the path re-created the forgotten mapping"
        if changed:
            detail += f" (the server now sees {obs.observed_after}, not {obs.observed_before})"
        if obs.late_push:
            detail += "; the push lost in the gap arrived late, retransmitted by the server"
        return AfterResult(AfterOutcome.REVIVED, changed, waited, detail, obs.late_push)
    if obs.ended is Ending.RESET:
        detail = "the message met a reset: the flow was gone at the far end or came back on a new port"
        if obs.ended_before:
            detail = "the connection had already been reset while idle"
        return AfterResult(AfterOutcome.RESET, None, waited, detail, obs.late_push)
    if obs.ended is Ending.CLOSED:
        detail = "the connection had been closed (FIN or close frame), as a proxy does at its idle timeout"
        return AfterResult(AfterOutcome.CLOSED, None, waited, detail, obs.late_push)
    detail = (
        f"nothing came back within {obs.waited_s:.1f}s: the path drops the forgotten flow's packets; "
        "without TCP_USER_TIMEOUT or a heartbeat timeout the socket would retransmit for ~15 min"
    )
    return AfterResult(AfterOutcome.BLACKHOLE, None, waited, detail, obs.late_push)


_MEANING = {
    AfterOutcome.REVIVED: (
        "the connection works again when your application next sends, but everything the server "
        "pushed during the gap was lost unless its TCP retransmits it in time"
    ),
    AfterOutcome.RESET: "your application gets a reset at its next send and can reconnect at once",
    AfterOutcome.BLACKHOLE: (
        "your application's next send vanishes: it learns nothing until TCP_USER_TIMEOUT, a heartbeat "
        "timeout or ~15 minutes of retransmissions end the socket; the server's pushes vanish too"
    ),
    AfterOutcome.CLOSED: "your application sees the connection closed and can reconnect",
}


def meaning(outcome: str) -> str:
    """One clause on what an outcome means for an application."""
    try:
        return _MEANING[AfterOutcome(outcome)]
    except ValueError:
        return ""


def udp_after_expiry(seen: bool, before: str | None, after: str | None, waited_s: float) -> AfterExpiry:
    """A datagram sent on a UDP binding the path forgot (its push was lost).

    The NAT makes a new binding for it, on the same public port or a new one:
    the server sees the same client again, or what looks like a new one (QUIC
    must validate the new path, WireGuard roams to it, a plain UDP server sees
    a stranger). Nothing reaching the server is a black hole.
    """
    changed = None if not seen or before is None or after is None else before != after
    if not seen:
        outcome = AfterOutcome.BLACKHOLE
        detail = f"nothing of the datagram reached the server within {waited_s:.1f}s"
    elif changed:
        outcome = AfterOutcome.REVIVED
        detail = (
            f"a new binding on a new public address ({after}, was {before}): the server sees a new client; "
            "QUIC must validate the new path, WireGuard roams to it, what the server sent in the gap was lost"
        )
    else:
        outcome = AfterOutcome.REVIVED
        detail = (
            "a new binding on the same public address: the server sees the same client again; "
            "only what it sent in the gap was lost"
        )
    return AfterExpiry(outcome, changed, round(waited_s, 3), detail)
