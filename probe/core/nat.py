"""What comparing this side's address with the one the server saw tells."""

from __future__ import annotations

from dataclasses import dataclass


def split_addr(text: str) -> tuple[str, int] | None:
    """``IP:PORT`` / ``[IP]:PORT`` into parts; None if malformed."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:]
    else:
        host, _, port = text.rpartition(":")
    return (host, int(port)) if port.isdigit() else None


@dataclass(frozen=True)
class NatFacts:
    """(schema: ``nat``) Both addresses as shown; None where they cannot tell."""

    local: str
    observed: str
    #: Whether the server saw another address or port than this side's.
    detected: bool | None
    #: Translated, yet the port kept: an endpoint-independent mapping is likely.
    port_preserved: bool | None


#: Before the server said what it saw.
UNKNOWN = NatFacts("", "", None, None)


def nat_facts(local: str, observed: str) -> NatFacts:
    mine, seen = split_addr(local), split_addr(observed)
    detected = None if mine is None or seen is None else mine != seen
    preserved = None if not detected or mine is None or seen is None else mine[1] == seen[1]
    return NatFacts(local, observed, detected, preserved)
