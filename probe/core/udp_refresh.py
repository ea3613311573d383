"""Does traffic from the server alone keep a UDP binding alive? Sans-I/O.

One probe exchanges with the server once, then stays silent while the server
sends it a datagram now and then (beats, each asked over the control
connection, which confirms it was sent). If beats still arrive when the
client has been silent longer than any flow state's timeout (the longest
upper bound plus the grace), inbound traffic refreshed the binding: a
server-side keepalive can keep a client reachable. If confirmed beats stop
arriving, the binding died despite them. RFC 4787 REQ-6 requires outbound
refresh of every NAT; inbound refresh (REQ-6a) is optional, hence the test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Beats come at this fraction of the longest idle known to survive, so that
#: a NAT which does refresh on inbound traffic never gets to expire the flow.
BEAT_FRACTION = 0.25
MIN_BEAT_S = 0.25
MAX_BEAT_S = 15.0
#: Confirmed beats lost in a row (none arriving since) that mean "no refresh":
#: one lost datagram is loss, two in a row after arrivals had stopped is not.
LOST_IN_A_ROW = 2


def beat_interval(longest_survived_s: float | None) -> float:
    """Seconds between beats, given the longest idle any state has survived."""
    return min(MAX_BEAT_S, max(MIN_BEAT_S, BEAT_FRACTION * (longest_survived_s or 0.0)))


@dataclass
class RefreshEvidence:
    #: When the client last sent on the probe: its silence counts from here.
    silent_since: float
    #: Beat number -> when it was asked; confirmed ones are in ``sent``.
    asked: dict[int, float] = field(default_factory=dict)
    sent: set[int] = field(default_factory=set)
    last_arrival: float | None = None

    def ask(self, beat: int, now: float) -> None:
        self.asked[beat] = now

    def confirmed(self, beat: int) -> None:
        if beat in self.asked:
            self.sent.add(beat)

    def arrived(self, now: float) -> None:
        self.last_arrival = now if self.last_arrival is None else max(self.last_arrival, now)

    @property
    def longest_silence(self) -> float | None:
        """The longest client silence after which a beat still arrived."""
        return None if self.last_arrival is None else self.last_arrival - self.silent_since

    def lost_since_last_arrival(self, now: float, grace_s: float) -> int:
        """Confirmed beats asked after the last arrival and overdue by ``grace_s``."""
        after = self.last_arrival if self.last_arrival is not None else self.silent_since
        return sum(1 for n in self.sent if after < self.asked[n] <= now - grace_s)

    def verdict(self, now: float, longest_upper_s: float | None, grace_s: float) -> bool | None:
        """True, False, or None while it cannot be told (or no state failed)."""
        if longest_upper_s is None:
            return None
        silence = self.longest_silence
        if silence is not None and silence > longest_upper_s + grace_s:
            return True
        if self.lost_since_last_arrival(now, grace_s) >= LOST_IN_A_ROW:
            return False
        return None

    def decided_by(self, longest_upper_s: float, grace_s: float, beat_s: float) -> float:
        """When the verdict is due at the latest: a beat past the longest
        timeout has had time to arrive, or two beats to be lost."""
        return self.silent_since + longest_upper_s + 2 * grace_s + LOST_IN_A_ROW * beat_s
