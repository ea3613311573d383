"""UDP keepalive advice in the terms of the protocols that need it, and its cost.

The interval is the same as for TCP (``MARGIN`` of the shortest flow state's
longest surviving idle, see recommend.py); what differs is how each protocol
spells it and what one keepalive costs on the wire (docs/plan.md gives the
sizes and their sources).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from probe.core.designs import Design, DesignOutcome, cheapest_kept
from probe.core.evidence import Bracket
from probe.core.model import key
from probe.core.plan import DAY_S, IPV4_HEADER, IPV6_HEADER
from probe.core.recommend import recommended_interval

UDP_HEADER = 8
#: WireGuard keepalive: a transport data message with no payload, 16-byte
#: header + 16-byte Poly1305 tag (WireGuard paper §5.4.6); never answered.
WIREGUARD_KEEPALIVE = 32
#: QUIC PING in a 1-RTT packet: 1-byte header, 8-byte connection ID, 2-byte
#: packet number, PING frame (1), padding to the 4 bytes header protection
#: needs, 16-byte AEAD tag (RFC 9000 §17.3, §19.2; RFC 9001 §5.4.2); it is
#: ack-eliciting, and the ACK frame (4 bytes) comes back in the same shape.
QUIC_PING = 1 + 8 + 2 + 4 + 16
QUIC_ACK = 1 + 8 + 2 + 4 + 16
#: STUN Binding request with FINGERPRINT (20 + 8) and its success response
#: with XOR-MAPPED-ADDRESS for IPv4/IPv6 and FINGERPRINT (RFC 8489; RFC 5626
#: §4.4.2 uses STUN keepalives for SIP over UDP).
STUN_REQUEST = 28
STUN_RESPONSE_V4 = 20 + 12 + 8
STUN_RESPONSE_V6 = 20 + 24 + 8

#: Keepalive intervals people already run, to compare with the measurement.
COMMON_INTERVALS: tuple[tuple[str, float], ...] = (
    ("WireGuard PersistentKeepalive (recommended 25 s)", 25.0),
    ("QUIC keep-alive (~30 s, RFC 9000 §10.1.2)", 30.0),
    ("SIP outbound keepalive (24-29 s, RFC 5626)", 29.0),
    ("ICE consent freshness (~5 s, RFC 7675)", 5.0),
)


def keeps_alive(interval_s: float, bracket: Bracket) -> bool | None:
    """Whether flows silent for ``interval_s`` survive: proven, refuted, or
    inside the bracket (None)."""
    if bracket.lower is not None and interval_s <= bracket.lower:
        return True
    if bracket.upper is not None and interval_s >= bracket.upper:
        return False
    return None


@dataclass(frozen=True)
class WireGuard:
    persistent_keepalive: int = field(metadata=key("PersistentKeepalive"))


@dataclass(frozen=True)
class Quic:
    #: An idle timeout above what the path keeps needs keep-alives; below
    #: it, QUIC closes an idle connection before the NAT forgets.
    keep_alive_interval_s: float
    max_idle_timeout_needs_keepalive_above_s: float | None


@dataclass(frozen=True)
class Sip:
    keepalive_interval_s: int
    stun_binding_interval_s: int


@dataclass(frozen=True)
class CommonDefault:
    name: str
    interval_s: float
    #: Proven to keep the flow, refuted, or inside the bracket (None).
    keeps_alive: bool | None


@dataclass(frozen=True)
class UdpRecommendations:
    """Settings to copy (schema: natprobe.discover/1 ``recommendations`` for udp://)."""

    interval_s: float
    #: The flow state whose timer the interval beats (the shortest).
    state: str | None
    wireguard: WireGuard
    quic: Quic
    sip: Sip
    common_defaults: list[CommonDefault]
    #: The cheapest design proven on this path to keep the binding (designs.md).
    design: Design | None = None


@dataclass(frozen=True)
class Cost:
    packets_per_day: int
    bytes_per_day: int


@dataclass(frozen=True)
class UdpPlan:
    """What a keepalive at the recommended interval costs, per binding and day."""

    purpose: str
    interval_s: float | None
    ip_version: int
    transport: str
    #: By design: wireguard, quic_ping, stun_binding; none without a failure.
    keepalives: dict[str, Cost]


def udp_recommendations(
    bracket: Bracket, state: str | None, designs: dict[Design, DesignOutcome] | None = None
) -> UdpRecommendations | None:
    """Settings to copy; None without a measured failure (``bracket`` is the
    shortest state's, named ``state``)."""
    interval = recommended_interval(bracket)
    if interval is None:
        return None
    whole = max(1, int(interval))
    return UdpRecommendations(
        interval_s=interval,
        state=state,
        wireguard=WireGuard(whole),
        quic=Quic(interval, None if bracket.lower is None else round(bracket.lower, 3)),
        sip=Sip(whole, whole),
        common_defaults=[CommonDefault(name, value, keeps_alive(value, bracket)) for name, value in COMMON_INTERVALS],
        design=None if designs is None else cheapest_kept(designs),
    )


def _cost(interval_s: float, packets: int, payloads: tuple[int, ...], ip_version: int) -> Cost:
    per_packet = (IPV6_HEADER if ip_version == 6 else IPV4_HEADER) + UDP_HEADER
    cycles = DAY_S / interval_s
    return Cost(round(cycles * packets), round(cycles * (sum(payloads) + packets * per_packet)))


def udp_plan(bracket: Bracket, ip_version: int = 4) -> UdpPlan:
    """What a keepalive at the recommended interval costs, per binding and day."""
    every = recommended_interval(bracket)
    stun_response = STUN_RESPONSE_V6 if ip_version == 6 else STUN_RESPONSE_V4
    designs: dict[str, Cost] = {}
    if every is not None:
        whole = float(max(1, int(every)))
        designs = {
            "wireguard": _cost(whole, 1, (WIREGUARD_KEEPALIVE,), ip_version),
            "quic_ping": _cost(every, 2, (QUIC_PING, QUIC_ACK), ip_version),
            "stun_binding": _cost(whole, 2, (STUN_REQUEST, stun_response), ip_version),
        }
    return UdpPlan(
        purpose="keep_alive" if every is not None else "detect_only",
        interval_s=every,
        ip_version=ip_version,
        transport="udp",
        keepalives=designs,
    )
