"""Which hop forgets the flow, from per-TTL outcomes (sans-I/O).

One idle connection per TTL k sends kernel keepalive probes with IP TTL k:
they refresh every stateful box up to hop k and none beyond. After an idle
well above the timeout the server pushes on each. The smallest k whose push
still arrives, with every larger k arriving too, is the hop whose state
expires. A baseline connection without probes must fail, or nothing expired
in the wait and nothing can be located.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from probe.core.evidence import Outcome
from probe.core.model import Model

_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def scope(address: str | None) -> str | None:
    """private, carrier-grade NAT (100.64.0.0/10), public, or None (unknown hop)."""
    if address is None:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if ip.version == 4 and ip in _CGNAT:
        return "carrier-grade NAT"
    if ip.is_private or ip.is_loopback or ip.is_link_local:
        return "private"
    return "public"


@dataclass(frozen=True)
class Verdict:
    #: The hop whose state expires, or None when it cannot be told.
    ttl: int | None
    at_destination: bool
    #: Survivals below the located hop contradict it (a NAT's loose pickup,
    #: a lost push): the answer needs a confirming round.
    consistent: bool
    reason: str
    #: TTLs whose outcomes contradict the verdict, to measure again.
    recheck: tuple[int, ...] = ()


def decide(outcomes: dict[int, bool], path_length: int, baseline_survived: bool | None) -> Verdict:
    """Locate the expiring hop from ``outcomes`` (TTL -> push arrived)."""
    if baseline_survived:
        return Verdict(None, False, True, "nothing_expired")
    ttls = sorted(outcomes)
    if not ttls or not any(outcomes.values()):
        return Verdict(None, False, True, "none_survived")
    located = None
    for ttl in reversed(ttls):
        if not outcomes[ttl]:
            break
        located = ttl
    if located is None:
        # The longest TTL failed: probes that reach the server did not keep
        # the flow, so the state is not refreshed by packets at all.
        return Verdict(None, False, False, "full_path_failed", (ttls[-1],))
    contradictions = tuple(t for t in ttls if t < located and outcomes[t])
    return Verdict(
        located,
        located >= path_length,
        not contradictions,
        "located" if not contradictions else "inconsistent",
        contradictions,
    )


def sentence(verdict: Verdict, address: str | None) -> str:
    """The answer in one sentence, for a person (or a carrier's support line)."""
    if verdict.ttl is None:
        return {
            "nothing_expired": "nothing expired during the wait: the timeout is longer than the one given",
            "none_survived": "no connection survived, even with probes at every hop: the state is not refreshed "
            "by keepalive probes (a proxy that counts only data?)",
        }.get(verdict.reason, "the hop could not be told: connections that reached the server failed")
    if verdict.at_destination:
        return (
            f"the state that expires is at the destination (hop {verdict.ttl}): the server's host, "
            "or a load balancer or proxy in front of it"
        )
    kind = scope(address)
    where = address or "address unknown"
    hint = {
        "private": "likely your own router" if verdict.ttl == 1 else "a private network on the way",
        "carrier-grade NAT": "a carrier-grade NAT: ask your provider, or keep connections alive",
        "public": "a box on the public path",
    }.get(kind or "", "a hop that did not say its address")
    return f"the state that expires is at hop {verdict.ttl} ({where}, {kind or 'scope unknown'}: {hint})"


@dataclass(frozen=True)
class HopSeen:
    """(schema: ``hops[]``) A hop as the trace found it; address None: silent."""

    ttl: int
    address: str | None
    rtt_s: float | None


@dataclass(frozen=True)
class ExpiringHop:
    ttl: int
    address: str | None
    scope: str | None


@dataclass(frozen=True)
class Round:
    """(schema: ``rounds[]``) One connection of a round: TTL 0 is the baseline, without probes."""

    round: int
    ttl: int
    probes: bool
    outcome: Outcome


def rounds(number: int, outcomes: dict[int, bool], baseline: bool) -> list[Round]:
    return [Round(number, 0, False, Outcome.of(baseline))] + [
        Round(number, ttl, True, Outcome.of(ok)) for ttl, ok in outcomes.items()
    ]


@dataclass(frozen=True)
class LocateResult(Model):
    """(schema: ``natprobe.locate/1``)"""

    schema: str = field(default="natprobe.locate/1", kw_only=True)
    target: str
    hops: list[HopSeen]
    expiring_hop: ExpiringHop | None
    at_destination: bool
    consistent: bool
    reason: str
    summary: str
    timeout_s: float
    wait_s: float
    probe_interval_s: int
    rounds: list[Round]
    wall_s: float


def located(
    target: str, hops: list[HopSeen], verdict: Verdict, timing: tuple[float, float, int, float], seen: list[Round]
) -> LocateResult:
    """The result: ``timing`` is (timeout, wait, probe interval, wall), in seconds."""
    timeout, wait, interval, wall = timing
    address = None if verdict.ttl is None else next((h.address for h in hops if h.ttl == verdict.ttl), None)
    return LocateResult(
        target=target,
        hops=hops,
        expiring_hop=None if verdict.ttl is None else ExpiringHop(verdict.ttl, address, scope(address)),
        at_destination=verdict.at_destination,
        consistent=verdict.consistent,
        reason=verdict.reason,
        summary=sentence(verdict, address),
        timeout_s=round(timeout, 3),
        wait_s=round(wait, 3),
        probe_interval_s=interval,
        rounds=seen,
        wall_s=round(wall, 3),
    )
