"""A keepalive plan: what each design costs per connection, and how fast it
notices a dead path. The arithmetic and its sources are in docs/plan.md.

Sans-I/O and pure: the measured bracket and the path's round-trip time in,
numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from probe.core.designs import Design, DesignOutcome, verdict
from probe.core.evidence import Bracket
from probe.core.model import inline
from probe.core.radio import RadioCost, radio_cost
from probe.core.recommend import keepalive_probe_interval, recommended_interval

DAY_S = 86_400

# Header sizes in bytes (docs/plan.md names the sources).
IPV4_HEADER = 20  # RFC 791, no options
IPV6_HEADER = 40  # RFC 8200, no extension headers
TCP_HEADER = 20  # RFC 9293, no options
TCP_TIMESTAMPS = 12  # RFC 7323: 10-byte option + 2 NOPs; Linux sends it on every segment
WS_CLIENT_FRAME = 6  # RFC 6455 5.2: 2-byte header + 4-byte mask (client frames are masked)
WS_SERVER_FRAME = 2  # server frames are not masked
TLS13_RECORD = 22  # RFC 8446 5.2: 5-byte header + 1-byte inner type + 16-byte AEAD tag
#: Ping payload: the websockets library sends 4 random bytes; the pong echoes them.
PING_PAYLOAD = 4

#: Kernel keepalive probes per unanswered probe round (TCP_KEEPCNT).
KEEPALIVE_COUNT = 3
#: Keepalive settings when the path needs none (detecting dead peers only).
DETECT_ONLY_IDLE_S = 60

#: Linux defaults: net.ipv4.tcp_retries2, TCP_RTO_MIN, TCP_RTO_MAX.
TCP_RETRIES2 = 15
RTO_MIN_S = 0.2
RTO_MAX_S = 120.0
#: Linux keepalive defaults: tcp_keepalive_time, _intvl, _probes.
DEFAULT_KEEPALIVE = (7200, 75, 9)


def segment_bytes(ip_version: int) -> int:
    """IP + TCP headers of one segment, timestamps included."""
    return (IPV6_HEADER if ip_version == 6 else IPV4_HEADER) + TCP_HEADER + TCP_TIMESTAMPS


def keepalive_cycle(ip_version: int) -> tuple[int, int]:
    """(packets, bytes) of one answered keepalive probe: the probe (no data)
    and the peer's ACK."""
    return 2, 2 * segment_bytes(ip_version)


def heartbeat_cycle(ip_version: int, tls: bool) -> tuple[int, int]:
    """(packets, bytes) of one WebSocket ping/pong heartbeat.

    The ping, the pong (which carries the ACK of the ping, being sent at
    once), and the client's ACK of the pong.
    """
    record = TLS13_RECORD if tls else 0
    seg = segment_bytes(ip_version)
    ping = seg + WS_CLIENT_FRAME + PING_PAYLOAD + record
    pong = seg + WS_SERVER_FRAME + PING_PAYLOAD + record
    return 3, ping + pong + seg


def retransmission_give_up_s(
    retries: int = TCP_RETRIES2, rto_min: float = RTO_MIN_S, rto_max: float = RTO_MAX_S
) -> float:
    """How long Linux retransmits unacknowledged data before failing the socket.

    The kernel's own model (tcp_model_timeout): the RTO doubles from
    ``rto_min`` until it reaches ``rto_max``, then stays there.
    """
    threshold = int(math.log2(rto_max / rto_min))
    if retries <= threshold:
        return ((2 << retries) - 1) * rto_min
    return ((2 << threshold) - 1) * rto_min + (retries - threshold) * rto_max


@dataclass(frozen=True)
class DayCost:
    """What one connection's design costs a day: on the wire, and on a phone's radio."""

    packets_per_day: int
    bytes_per_day: int
    #: On a phone: radio wake-ups and LTE energy a day (core/radio.py).
    mobile: RadioCost = field(metadata=inline())


def _per_day(interval_s: float, cycle: tuple[int, int]) -> DayCost:
    cycles = DAY_S / interval_s
    return DayCost(round(cycles * cycle[0]), round(cycles * cycle[1]), radio_cost(interval_s))


@dataclass(frozen=True)
class PlanInputs:
    bracket: Bracket
    rtt_s: float | None = None
    ip_version: int = 4
    tls: bool = False
    #: What the design connections proved on the path, where they ran.
    designs: dict[Design, DesignOutcome] | None = None


def heartbeat_timeout(rtt_s: float | None) -> float:
    """Wait this long for a heartbeat's answer: many RTTs, and never under 5 s,
    so that a slow radio wake-up is not taken for a dead path."""
    return max(5.0, math.ceil(10 * (rtt_s or 0.0) * 10) / 10)


@dataclass(frozen=True)
class KeepalivePlan:
    """Kernel keepalive at the plan's interval (whole seconds: the options take nothing finer)."""

    idle_s: int
    interval_s: int
    count: int
    #: A dead path is noticed this long after the last data.
    detect_s: int
    cost: DayCost = field(metadata=inline())
    #: The design connection's verdict on this path (None: not tried).
    kept: bool | None = None


@dataclass(frozen=True)
class BusyCost:
    """Heartbeat packets a day on a connection whose own traffic comes more often."""

    fixed: int
    idle: int


@dataclass(frozen=True)
class HeartbeatPlan:
    interval_s: float
    timeout_s: float
    detect_s: float
    cost: DayCost = field(metadata=inline())
    #: Only-when-idle heartbeats cost the same on an idle connection and
    #: nothing on one whose own traffic comes more often.
    mode: str
    busy_connection_packets_per_day: BusyCost
    #: The heartbeat design connection's verdict on this path (None: not tried).
    kept: bool | None = None


@dataclass(frozen=True)
class HeldToday:
    """How long a server holds a session today, with kernel defaults."""

    pushed_s: float
    idle_s: float | None
    idle_with_default_keepalive_s: int


@dataclass(frozen=True)
class ServerPlan:
    #: Pushed data the client's TCP never acknowledges frees the session
    #: after this; it sends nothing on idle connections.
    user_timeout_s: float
    #: Without heartbeats from the client for this long, drop it.
    idle_session_timeout_s: float
    held_today: HeldToday


@dataclass(frozen=True)
class Plan:
    """A TCP or WebSocket path's plan (schema: natprobe.discover/1 ``plan``)."""

    #: keep_alive, or detect_only where nothing failed.
    purpose: str
    interval_s: float | None
    ip_version: int
    tls: bool
    keepalive: KeepalivePlan
    heartbeat: HeartbeatPlan
    server: ServerPlan


def make_plan(inputs: PlanInputs) -> Plan:
    """The plan for the measured bracket and the path's RTT."""
    interval = recommended_interval(inputs.bracket)
    purpose = "keep_alive" if interval is not None else "detect_only"
    ka_idle = max(1, int(interval)) if interval is not None else DETECT_ONLY_IDLE_S
    ka_interval = keepalive_probe_interval(ka_idle)
    ka_cost = _per_day(ka_idle, keepalive_cycle(inputs.ip_version))
    hb_interval = interval if interval is not None else float(DETECT_ONLY_IDLE_S)
    hb_timeout = heartbeat_timeout(inputs.rtt_s)
    hb_cost = _per_day(hb_interval, heartbeat_cycle(inputs.ip_version, inputs.tls))
    default_idle, default_intvl, default_count = DEFAULT_KEEPALIVE
    return Plan(
        purpose=purpose,
        interval_s=interval,
        ip_version=inputs.ip_version,
        tls=inputs.tls,
        keepalive=KeepalivePlan(
            idle_s=ka_idle,
            interval_s=ka_interval,
            count=KEEPALIVE_COUNT,
            detect_s=ka_idle + ka_interval * KEEPALIVE_COUNT,
            cost=ka_cost,
            kept=verdict(inputs.designs, Design.TCP_KEEPALIVE),
        ),
        heartbeat=HeartbeatPlan(
            interval_s=hb_interval,
            timeout_s=hb_timeout,
            detect_s=round(hb_interval + hb_timeout, 3),
            cost=hb_cost,
            mode="idle",
            busy_connection_packets_per_day=BusyCost(fixed=hb_cost.packets_per_day, idle=0),
            kept=verdict(inputs.designs, Design.HEARTBEAT),
        ),
        server=ServerPlan(
            user_timeout_s=max(30.0, 3 * hb_timeout),
            idle_session_timeout_s=round(hb_interval + hb_timeout, 3),
            held_today=HeldToday(
                pushed_s=round(retransmission_give_up_s(), 1),
                idle_s=None,
                idle_with_default_keepalive_s=default_idle + default_intvl * default_count,
            ),
        ),
    )
