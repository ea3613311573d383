"""The server's registry, sans-I/O: who is connected, what each address may
still open, and the limits a welcome reports.

It counts sessions (per address and in all), parked holds, and registered
sessions by id; timers and UDP sends are the adapter's (``call_later``,
``send_udp``), so the sessions it holds step in virtual time in tests.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from probe.core.udp_table import ProbeTable, Report, UdpLimits

if TYPE_CHECKING:
    from probe.core.server_session import Session

log = logging.getLogger("natprobe.server")


@dataclass(frozen=True)
class ServerConfig:
    max_idle_s: float = 7800.0
    token: str | None = None
    hello_timeout_s: float = 10.0
    #: A connection that sends part of a line and stops is closed after this.
    partial_line_timeout_s: float = 15.0
    max_sessions: int = 10_000
    max_per_ip: int = 256
    #: Connections that have sent nothing by the hello deadline (a ``hold``,
    #: which measures a silent connection) are kept, silent, up to these
    #: counts, inside the session limits above; others are closed.
    max_parked_per_ip: int = 4
    max_parked: int = 100
    max_rounds: int = 100_000
    #: At most this many rejected-client log lines per second.
    log_rate: float = 5.0
    #: TCP_USER_TIMEOUT on every session: a push the client's TCP never
    #: acknowledges frees its session after this long, instead of after the
    #: ~15 minutes of retransmissions the kernel does by default. It sends
    #: nothing on an idle connection (unlike keepalive, which would refresh
    #: the very NAT state under test). None leaves the kernel default.
    user_timeout_s: float | None = 30.0
    #: How long after a push the server looks whether the client's TCP has
    #: acknowledged it, and tells the run's control connection if not.
    ack_check_s: float = 1.0
    #: The demo's hung application (``natprobe demo --hung-server``): after
    #: its welcome a TCP session is never read again, while the kernel goes on
    #: acknowledging (keepalive probes included). Never on a real server.
    hang_after_welcome: bool = False
    udp: UdpLimits = field(default_factory=UdpLimits)


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class RateLimitedLog:
    """One line per rejected client, but never more than ``rate`` a second."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self._rate = rate
        self._clock = clock
        self._allowance = rate
        self._last = clock()
        self.suppressed = 0

    def warn(self, message: str) -> None:
        now = self._clock()
        self._allowance = min(self._rate, self._allowance + (now - self._last) * self._rate)
        self._last = now
        if self._allowance < 1.0:
            self.suppressed += 1
            return
        self._allowance -= 1.0
        if self.suppressed:
            message += f" ({self.suppressed} similar lines suppressed)"
            self.suppressed = 0
        log.warning(message)


def _count_down(counts: dict[str, int], ip: str) -> None:
    """One session fewer from ``ip``; addresses at zero leave the map."""
    left = counts.get(ip, 1) - 1
    if left:
        counts[ip] = left
    else:
        counts.pop(ip, None)


class Registry:
    """The sessions of one server process and the limits they are held to."""

    def __init__(self, config: ServerConfig | None, clock: Callable[[], float], server_name: str) -> None:
        self.config = config or ServerConfig()
        self.clock = clock
        #: What welcome calls this server ("natprobe 0.1.0").
        self.server_name = server_name
        self.sessions: dict[str, Session] = {}
        self.live: set[Session] = set()
        self.per_ip: dict[str, int] = {}
        self.parked_per_ip: dict[str, int] = {}
        self.parked = 0
        self.reject_log = RateLimitedLog(self.config.log_rate, clock)
        self.udp = ProbeTable(self.config.udp)
        self.udp_addresses: list[tuple[str, int]] = []
        #: Names this process in welcome: clients reaching it on several ports
        #: or addresses (a survey) know their connections share its limits.
        self.instance = secrets.token_hex(8)

    # The adapter's ----------------------------------------------------------

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` after ``delay`` seconds."""
        raise NotImplementedError

    def send_udp(self, sends: Sequence[Any]) -> None:
        """Send a UDP push's copies (spaced; see udp_table.ProbeTable.push)."""
        raise NotImplementedError

    def authorized(self, token: str | None) -> bool:
        expected = self.config.token
        if expected is None:
            return True
        return token is not None and hmac.compare_digest(token.encode(), expected.encode())

    def admit(self, session: Session) -> str | None:
        """Count a new connection; a reason to refuse it, or None."""
        ip = session.peer[0]
        if len(self.live) >= self.config.max_sessions:
            return "server is at its session limit"
        if self.per_ip.get(ip, 0) >= self.config.max_per_ip:
            return "too many sessions from this address"
        self.live.add(session)
        self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
        return None

    def limits_for(self, ip: str) -> dict[str, int]:
        """The limits a client from ``ip`` is held to, and what is left of them,
        so that a client can size its connection pool instead of failing."""
        cfg = self.config
        return {
            "max_sessions": cfg.max_sessions,
            "sessions_free": max(0, cfg.max_sessions - len(self.live)),
            "max_per_ip": cfg.max_per_ip,
            "per_ip_free": max(0, cfg.max_per_ip - self.per_ip.get(ip, 0)),
        }

    def park(self, session: Session) -> bool:
        """Count a parked connection; False when its quotas are full."""
        ip = session.peer[0]
        cfg = self.config
        if self.parked >= cfg.max_parked or self.parked_per_ip.get(ip, 0) >= cfg.max_parked_per_ip:
            return False
        self.parked += 1
        self.parked_per_ip[ip] = self.parked_per_ip.get(ip, 0) + 1
        return True

    def unpark(self, session: Session) -> None:
        self.parked -= 1
        _count_down(self.parked_per_ip, session.peer[0])

    def _register(self, session: Session) -> None:
        self.sessions[session.id] = session

    def _forget(self, session: Session) -> None:
        if session in self.live:
            self.live.discard(session)
            _count_down(self.per_ip, session.peer[0])
        if session.id and self.sessions.get(session.id) is session:
            del self.sessions[session.id]

    def deliver(self, report: Report) -> None:
        """A UDP probe's news, for the control session that owns it."""
        session = self.sessions.get(report.owner)
        if session is not None:
            session.send(report.message)
