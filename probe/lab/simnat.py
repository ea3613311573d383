"""A virtual-time NAT, and drivers that run discovery strategies through it.

Nothing here sleeps or opens a socket: time is a number that jumps from one
event to the next, so a two-hour discovery runs in milliseconds. Used by the
tests of the planner and by benchmarks/discovery.py.

Model (the NAT sits next to the client, as home and carrier NATs do):

* A flow's idle clock restarts whenever a packet crosses the NAT.
* With ``sweep_s == 0`` a flow expires the moment it has been idle for
  ``timeout_s``. With a sweep, the NAT only looks every ``sweep_s`` seconds
  (at a random phase), so flows expire up to ``sweep_s`` late.
* ``drop`` forgets the flow silently; ``reset`` and ``close`` tell both ends
  at the moment it expires.
* A push may be lost once and retransmitted one RTO later.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from probe.core.evidence import Bracket, FailureMode
from probe.core.planner import Action, Close, Finish, Open, Planner, Probe

_MODES = {"drop": FailureMode.SILENT_DROP, "reset": FailureMode.RESET, "close": FailureMode.CLOSED}


@dataclass(frozen=True)
class SimPath:
    timeout_s: float
    mode: str = "drop"
    sweep_s: float = 0.0
    rtt_s: float = 0.02
    #: Each one-way delay varies uniformly by this fraction of itself.
    rtt_jitter: float = 0.0
    #: Chance that a push is lost once and retransmitted.
    loss_once: float = 0.0
    seed: int = 1
    #: UDP probes instead of TCP connections: one datagram binds the flow,
    #: and what happens before the idle period is the state's (see _open_udp).
    udp_state: str | None = None
    #: The stream state's second exchange comes this long after the first.
    stream_gap_s: float = 2.5

    def __post_init__(self) -> None:
        if self.mode not in _MODES:
            raise ValueError(f"unknown mode {self.mode!r}")
        if self.udp_state not in (None, "unreplied", "replied", "stream"):
            raise ValueError(f"unknown UDP state {self.udp_state!r}")


class SimNat:
    """Flow table of a NAT on a virtual clock."""

    def __init__(self, path: SimPath) -> None:
        self.path = path
        self.rng = random.Random(path.seed)
        self._phase = self.rng.uniform(0.0, path.sweep_s) if path.sweep_s > 0 else 0.0
        self._last: dict[int, float] = {}

    def one_way(self) -> float:
        half = self.path.rtt_s / 2
        jitter = self.path.rtt_jitter
        return half * (1.0 + self.rng.uniform(-jitter, jitter)) if jitter else half

    def expiry(self, flow: int) -> float:
        """When the flow, left idle, is forgotten."""
        due = self._last[flow] + self.path.timeout_s
        sweep = self.path.sweep_s
        if sweep <= 0:
            return due
        ticks = math.ceil((due - self._phase) / sweep)
        return self._phase + ticks * sweep

    def touch(self, flow: int, t: float) -> bool:
        """A packet crosses at ``t``; False if the flow was already forgotten."""
        if flow in self._last and t > self.expiry(flow):
            del self._last[flow]
            return False
        if flow not in self._last:
            return False
        self._last[flow] = t
        return True

    def create(self, flow: int, t: float) -> None:
        self._last[flow] = t

    def remove(self, flow: int) -> None:
        self._last.pop(flow, None)

    def alive(self, flow: int, t: float) -> bool:
        return flow in self._last and t <= self.expiry(flow)


@dataclass
class SimResult:
    bracket: Bracket
    wall_s: float
    max_connections: int
    connections_opened: int
    probes: int
    reason: str


@dataclass(order=True)
class _Event:
    at: float
    seq: int
    run: Callable[[], list[Action]] = field(compare=False)


class PlannerSim:
    """Drives a :class:`Planner` through a :class:`SimNat` on virtual time."""

    def __init__(self, planner: Planner, path: SimPath, limit_s: float = 200_000.0) -> None:
        self.planner = planner
        self.nat = SimNat(path)
        self.path = path
        self.limit_s = limit_s
        self.now = 0.0
        self._queue: list[_Event] = []
        self._seq = itertools.count()
        self._expiry_version: dict[int, int] = {}
        self._done: str | None = None

    def _at(self, t: float, run: Callable[[], list[Action]]) -> None:
        heapq.heappush(self._queue, _Event(t, next(self._seq), run))

    def _activity(self, conn: int, t: float) -> None:
        """A packet of ``conn`` crossed the NAT; reschedule an active expiry."""
        if self.path.mode == "drop":
            return
        version = self._expiry_version.get(conn, 0) + 1
        self._expiry_version[conn] = version
        expiry = self.nat.expiry(conn)
        mode = _MODES[self.path.mode]

        def kill() -> list[Action]:
            # Stale if the flow saw traffic since, or the client closed it.
            if self._expiry_version.get(conn) != version:
                return []
            self.nat.remove(conn)
            return self.planner.ended(conn, mode, self.now)

        # Reset or close reaches the client one way later.
        self._at(expiry + self.nat.one_way(), kill)

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Open):
                self._open(action.conn)
            elif isinstance(action, Probe):
                self._probe(action.conn)
            elif isinstance(action, Close):
                self.nat.remove(action.conn)
                self._expiry_version.pop(action.conn, None)
            elif isinstance(action, Finish):
                self._done = action.reason

    def _open_udp(self, conn: int, state: str) -> None:
        """unreplied: the datagram binds the flow now and the server's report
        comes an RTT later; replied: the reply crosses back an RTT later;
        stream: a second exchange ``stream_gap_s`` after the first."""
        rtt = self.path.rtt_s
        self.nat.create(conn, self.now)
        since = self.now
        if state != "unreplied":
            since += rtt + (self.path.stream_gap_s if state == "stream" else 0.0)

        def opened() -> list[Action]:
            self.nat.touch(conn, since)
            return self.planner.opened(conn, self.now, since=since)

        self._at(max(since, self.now + rtt), opened)

    def _open(self, conn: int) -> None:
        if self.path.udp_state is not None:
            self._open_udp(conn, self.path.udp_state)
            return
        rtt = self.path.rtt_s
        # SYN, hello/welcome: the client sends its last message 2 RTT later,
        # and the server's ACK of it crosses the NAT one RTT after that.
        armed = self.now + 2 * rtt

        def opened() -> list[Action]:
            self.nat.create(conn, armed + rtt)
            self._activity(conn, armed + rtt)
            return self.planner.opened(conn, self.now)

        self._at(armed, opened)

    def _probe(self, conn: int) -> None:
        asked = self.now
        to_server = self.nat.one_way()
        sent = asked + to_server
        # Server idle: from the arrival of the client's last message (one way
        # after the client sent it) to the push; the planner knows its own
        # send time, so the simulated server reports the idle it would see.
        view = self.planner.conns.get(conn)
        idle_since = view.idle_since if view is not None else asked
        server_idle = max(0.0, sent - (idle_since + to_server))
        back = self.nat.one_way()
        crossing = sent + back
        lost = self.nat.rng.random() < self.path.loss_once
        if lost:
            crossing += max(0.2, 2 * self.path.rtt_s)

        def confirm() -> list[Action]:
            return self.planner.pushed(conn, server_idle, self.now)

        self._at(sent + self.nat.one_way(), confirm)

        def arrive() -> list[Action]:
            if not self.nat.touch(conn, crossing):
                return []
            if self.path.udp_state is not None:
                return self.planner.arrived(conn, server_idle, self.now)
            # The client answers at once; the server's ACK crosses one RTT later.
            self.nat.touch(conn, crossing + self.path.rtt_s)
            self._activity(conn, crossing + self.path.rtt_s)
            return self.planner.arrived(conn, server_idle, self.now)

        self._at(crossing, arrive)

    def run(self) -> SimResult:
        self._apply(self.planner.start(0.0))
        steps = 0
        while self._done is None:
            steps += 1
            if steps > 2_000_000:
                raise RuntimeError("simulation did not finish")
            wake = self.planner.next_wakeup()
            nxt = self._queue[0].at if self._queue else math.inf
            if wake is not None and wake <= nxt:
                self.now = max(self.now, wake)
                self._apply(self.planner.tick(self.now))
            elif self._queue:
                event = heapq.heappop(self._queue)
                self.now = max(self.now, event.at)
                self._apply(event.run())
            else:
                raise RuntimeError("planner is stuck: no event and no wake-up")
            if self.now > self.limit_s:
                raise RuntimeError("simulation ran past its time limit")
        stats = self.planner.stats
        return SimResult(
            bracket=self.planner.bracket(),
            wall_s=self.now,
            max_connections=stats.max_open + 1,  # + the control connection
            connections_opened=stats.opened + 1,
            probes=stats.probes,
            reason=self._done,
        )


def simulate(planner: Planner, path: SimPath) -> SimResult:
    return PlannerSim(planner, path).run()
