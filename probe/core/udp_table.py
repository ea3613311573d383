"""The server's UDP probes, without I/O: who owns each, where it may send, how much.

A probe is created on request of a control session, which gets its id (16
random bytes) and alone may ask for pushes on it. A datagram naming the id
binds the probe to the address it came from. Nothing is ever sent to an
address that has not first sent a datagram naming a live probe, and until
that address proves it can receive (by echoing the cookie of a reply), it is
sent at most ``AMPLIFICATION`` times the bytes received from it (RFC 9000
§8.1's rule): a forged source address gains an attacker at most that factor.
Junk, unknown ids, short and oversized datagrams get nothing back, and every
source address is rate-limited before its datagram is even parsed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from probe.core.targets import format_address
from probe.core.udp_wire import COOKIE_SIZE, PROBE_ID_SIZE, Datagram, Kind, parse_client

AMPLIFICATION = 3

Address = tuple[str, int]


@dataclass(frozen=True)
class UdpLimits:
    #: Live probes on the whole server, per control session, and per address
    #: of the control sessions that own them.
    max_probes: int = 20_000
    max_per_owner: int = 512
    max_per_ip: int = 1024
    #: Datagrams a second (sustained, and burst) taken from one source IP.
    rate_per_ip: float = 200.0
    burst_per_ip: float = 400.0
    #: Source IPs whose rates are tracked; the oldest is forgotten beyond it.
    max_tracked_ips: int = 65_536
    #: Copies of one push, at most.
    max_copies: int = 3


class Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Send:
    data: bytes
    addr: Address
    #: The I/O layer's note of where the probe's datagrams came in (socket and
    #: local address): answers leave from there, so address-dependent
    #: filtering on the path sees the flow it expects.
    via: Any = None


@dataclass(frozen=True)
class Report:
    """A message for the owning control session."""

    owner: str
    message: dict[str, Any]


@dataclass
class Probe:
    id: bytes
    owner: str
    owner_ip: str
    cookie: bytes
    last_activity: float
    addr: Address | None = None
    #: Bytes from and to ``addr``: the amplification budget is per address.
    received: int = 0
    sent: int = 0
    validated: bool = False
    via: Any = None

    def may_send(self, size: int) -> bool:
        return self.validated or self.sent + size <= AMPLIFICATION * self.received

    def rebind(self, addr: Address, cookie: bytes) -> None:
        """A new address (first bind, or the NAT picked a new port): its budget
        starts from nothing, and only a cookie sent to it can validate it."""
        self.addr = addr
        self.received = self.sent = 0
        self.validated = False
        self.cookie = cookie


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class ProbeTable:
    limits: UdpLimits = field(default_factory=UdpLimits)
    token: Callable[[int], bytes] = secrets.token_bytes
    probes: dict[bytes, Probe] = field(default_factory=dict)
    by_owner: dict[str, set[bytes]] = field(default_factory=dict)
    per_ip: dict[str, int] = field(default_factory=dict)
    _rates: dict[str, _Bucket] = field(default_factory=dict)
    #: Datagrams dropped unanswered (rate, junk, unknown id), for the logs.
    dropped: int = 0

    # Control side -------------------------------------------------------------

    def open(self, owner: str, owner_ip: str, now: float) -> Probe:
        lim = self.limits
        owned = self.by_owner.get(owner, set())
        if len(self.probes) >= lim.max_probes:
            raise Refused("server_full")
        if len(owned) >= lim.max_per_owner:
            raise Refused("session_full")
        if self.per_ip.get(owner_ip, 0) >= lim.max_per_ip:
            raise Refused("address_full")
        probe = Probe(self.token(PROBE_ID_SIZE), owner, owner_ip, self.token(COOKIE_SIZE), now)
        self.probes[probe.id] = probe
        self.by_owner.setdefault(owner, set()).add(probe.id)
        self.per_ip[owner_ip] = self.per_ip.get(owner_ip, 0) + 1
        return probe

    def release(self, owner: str, probe_id: bytes) -> bool:
        """Free one probe of ``owner``; False if it has none by that id."""
        probe = self.probes.get(probe_id)
        if probe is None or probe.owner != owner:
            return False
        del self.probes[probe_id]
        owned = self.by_owner[owner]
        owned.discard(probe_id)
        if not owned:
            del self.by_owner[owner]
        left = self.per_ip[probe.owner_ip] - 1
        if left:
            self.per_ip[probe.owner_ip] = left
        else:
            del self.per_ip[probe.owner_ip]
        return True

    def drop_owner(self, owner: str) -> int:
        """The control session ended: free all its probes; return how many."""
        ids = list(self.by_owner.get(owner, ()))
        for probe_id in ids:
            self.release(owner, probe_id)
        return len(ids)

    def push(self, owner: str, probe_id: bytes, seq: int, copies: int, now: float) -> tuple[list[Send], dict[str, Any]]:
        """Up to ``copies`` copies of a push on the probe, within its budget;
        and the fields of the ``pushed`` answer."""
        probe = self.probes.get(probe_id)
        if probe is None or probe.owner != owner:
            return [], {"sent": False, "reason": "unknown_probe"}
        if probe.addr is None:
            return [], {"sent": False, "reason": "not_bound"}
        data = Datagram(Kind.PUSH, probe.id, seq).encode()
        sends: list[Send] = []
        for _ in range(max(1, min(copies, self.limits.max_copies))):
            if not probe.may_send(len(data)):
                break
            probe.sent += len(data)
            sends.append(Send(data, probe.addr, probe.via))
        if not sends:
            return [], {"sent": False, "reason": "amplification"}
        idle = now - probe.last_activity
        probe.last_activity = now
        return sends, {"sent": True, "idle_s": round(idle, 4), "copies": len(sends)}

    # Datagram side ------------------------------------------------------------

    def datagram(self, data: bytes, addr: Address, now: float, via: Any = None) -> tuple[list[Send], Report | None]:
        """What to send back for a datagram from ``addr``, and whom to tell."""
        if not self._take(addr[0], now):
            self.dropped += 1
            return [], None
        msg = parse_client(data)
        probe = None if msg is None else self.probes.get(msg.probe)
        if msg is None or probe is None:
            self.dropped += 1
            return [], None
        rebound = probe.addr is not None and probe.addr != addr
        if probe.addr != addr:
            probe.rebind(addr, self.token(COOKIE_SIZE))
        elif msg.cookie == probe.cookie:
            probe.validated = True
        probe.received += len(data)
        probe.last_activity = now
        probe.via = via
        sends: list[Send] = []
        if msg.kind is Kind.ECHO:
            reply = Datagram(Kind.REPLY, probe.id, msg.seq, probe.cookie).encode()
            if probe.may_send(len(reply)):
                probe.sent += len(reply)
                sends.append(Send(reply, addr, via))
        report = {
            "op": "udp_seen",
            "probe": probe.id.hex(),
            "seq": msg.seq,
            "observed": format_address(*addr),
            "replied": bool(sends),
            "validated": probe.validated,
            "rebound": rebound,
        }
        return sends, Report(probe.owner, report)

    def _take(self, ip: str, now: float) -> bool:
        """One datagram from ``ip`` against its token bucket."""
        lim = self.limits
        bucket = self._rates.get(ip)
        if bucket is None:
            if len(self._rates) >= lim.max_tracked_ips:
                # Forget the address seen longest ago (dicts keep insertion order).
                del self._rates[next(iter(self._rates))]
            bucket = self._rates[ip] = _Bucket(lim.burst_per_ip, now)
        bucket.tokens = min(lim.burst_per_ip, bucket.tokens + (now - bucket.at) * lim.rate_per_ip)
        bucket.at = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True
