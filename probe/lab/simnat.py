"""A virtual-time NAT, and drivers that run discovery strategies through it.

Nothing here sleeps or opens a socket: time is a number that jumps from one
event to the next, so a two-hour discovery runs in milliseconds. A whole
sans-I/O Discovery runs through it, one simulated path per flow state (the
same commands a real run's sockets carry out). Used by the tests of the
planner and the Discovery, and by benchmarks/discovery.py.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from probe.core.commands import Command, KeepForAfterExpiry, Key, OpenConnection, Release, RequestPush
from probe.core.discovery import TCP, Discovery
from probe.core.evidence import Bracket, FailureMode
from probe.core.planner import Planner

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
    run: Callable[[], list[Command]] = field(compare=False)


class DiscoverySim:
    """Drives a whole :class:`Discovery` through one :class:`SimNat` per flow
    state on virtual time: the commands a real run's sockets would carry out,
    answered as the simulated path would."""

    def __init__(self, discovery: Discovery, paths: Mapping[str, SimPath], limit_s: float = 200_000.0) -> None:
        self.discovery = discovery
        self.paths = dict(paths)
        self.nats = {state: SimNat(path) for state, path in paths.items()}
        self.limit_s = limit_s
        self.now = 0.0
        self.commands: list[Command] = []
        self._queue: list[_Event] = []
        self._seq = itertools.count()
        self._expiry_version: dict[Key, int] = {}
        #: UDP: when the server received each probe's last datagram; its
        #: pushed idle counts from there (probe/core/udp_table.py).
        self._server_seen: dict[Key, float] = {}

    def _at(self, t: float, run: Callable[[], list[Command]]) -> None:
        heapq.heappush(self._queue, _Event(t, next(self._seq), run))

    def _activity(self, key: Key, t: float) -> None:
        """A packet of ``key`` crossed the NAT; reschedule an active expiry."""
        path = self.paths[key[0]]
        if path.mode == "drop":
            return
        version = self._expiry_version.get(key, 0) + 1
        self._expiry_version[key] = version
        nat = self.nats[key[0]]
        expiry = nat.expiry(key[1])
        mode = _MODES[path.mode]

        def kill() -> list[Command]:
            # Stale if the flow saw traffic since, or the client closed it.
            if self._expiry_version.get(key) != version:
                return []
            nat.remove(key[1])
            return self.discovery.ended(key, mode, self.now)

        # Reset or close reaches the client one way later.
        self._at(expiry + nat.one_way(), kill)

    def _apply(self, commands: list[Command]) -> None:
        self.commands += commands
        for command in commands:
            if isinstance(command, OpenConnection):
                self._open(command.key)
            elif isinstance(command, RequestPush):
                self._probe(command.key)
            elif isinstance(command, Release | KeepForAfterExpiry):
                # Kept or closed, no more of its traffic crosses the NAT.
                self.nats[command.key[0]].remove(command.key[1])
                self._expiry_version.pop(command.key, None)

    def _open_udp(self, key: Key) -> None:
        """unreplied: the datagram binds the flow now and the server's report
        comes an RTT later; replied: the reply crosses back an RTT later;
        stream: a second exchange ``stream_gap_s`` after the first."""
        state, conn = key
        path, nat = self.paths[state], self.nats[state]
        nat.create(conn, self.now)
        since = self.now
        if path.udp_state != "unreplied":
            since += path.rtt_s + (path.stream_gap_s if path.udp_state == "stream" else 0.0)
        # unreplied: the hello reaches the server one way after it bound the
        # flow (this NAT is by the client); otherwise the server answered the
        # last echo as it arrived, one way before its reply got back.
        half = path.rtt_s / 2
        self._server_seen[key] = since + half if path.udp_state == "unreplied" else since - half

        def opened() -> list[Command]:
            nat.touch(conn, since)
            return self.discovery.opened(key, self.now, since=since, session=f"{state}.{conn}")

        self._at(max(since, self.now + path.rtt_s), opened)

    def _open(self, key: Key) -> None:
        state, conn = key
        path, nat = self.paths[state], self.nats[state]
        if path.udp_state is not None:
            self._open_udp(key)
            return
        rtt = path.rtt_s
        # SYN, hello/welcome: the client sends its last message 2 RTT later,
        # and the server's ACK of it crosses the NAT one RTT after that.
        armed = self.now + 2 * rtt

        def opened() -> list[Command]:
            nat.create(conn, armed + rtt)
            self._activity(key, armed + rtt)
            return self.discovery.opened(key, self.now, session=f"{state}.{conn}")

        self._at(armed, opened)

    def _probe(self, key: Key) -> None:
        state, conn = key
        path, nat = self.paths[state], self.nats[state]
        asked = self.now
        to_server = nat.one_way()
        sent = asked + to_server
        # Server idle: from the arrival of the client's last message (one way
        # after the client sent it) to the push; the planner knows its own
        # send time, so the simulated server reports the idle it would see.
        view = self.discovery.planners[state].conns.get(conn)
        idle_since = view.idle_since if view is not None else asked
        seen = self._server_seen.get(key, idle_since + to_server)
        server_idle = max(0.0, sent - seen)
        back = nat.one_way()
        crossing = sent + back
        if nat.rng.random() < path.loss_once:
            crossing += max(0.2, 2 * path.rtt_s)

        def confirm() -> list[Command]:
            return self.discovery.pushed(key, server_idle, self.now)

        self._at(sent + nat.one_way(), confirm)

        def arrive() -> list[Command]:
            if not nat.touch(conn, crossing):
                return []
            if path.udp_state is None:
                # The client answers at once; the server's ACK crosses one RTT later.
                nat.touch(conn, crossing + path.rtt_s)
                self._activity(key, crossing + path.rtt_s)
            return self.discovery.arrived(key, server_idle, self.now)

        self._at(crossing, arrive)

    def run(self) -> SimResult:
        discovery = self.discovery
        self._apply(discovery.start(0.0))
        steps = 0
        while discovery.settled is None:
            steps += 1
            if steps > 2_000_000:
                raise RuntimeError("simulation did not finish")
            wake = discovery.next_wakeup()
            nxt = self._queue[0].at if self._queue else math.inf
            if wake is not None and wake <= nxt:
                self.now = max(self.now, wake)
                self._apply(discovery.tick(self.now))
            elif self._queue:
                event = heapq.heappop(self._queue)
                self.now = max(self.now, event.at)
                self._apply(event.run())
            else:
                raise RuntimeError("discovery is stuck: no event and no wake-up")
            if self.now > self.limit_s:
                raise RuntimeError("simulation ran past its time limit")
        stats = [p.stats for p in discovery.planners.values()]
        shortest = discovery.planners[discovery.shortest()]
        return SimResult(
            bracket=discovery.bracket(),
            wall_s=self.now,
            max_connections=sum(s.max_open for s in stats) + 1,  # + the control connection
            connections_opened=sum(s.opened for s in stats) + 1,
            probes=sum(s.probes for s in stats),
            reason=shortest.finished or "incomplete",
        )


def planner_discovery(planner: Planner, path: SimPath) -> Discovery:
    """A one-state Discovery around ``planner`` (its config as it is)."""
    state = path.udp_state or TCP
    discovery = Discovery({state: planner.config}, udp=path.udp_state is not None)
    discovery.planners[state] = planner
    return discovery


def simulate(planner: Planner, path: SimPath) -> SimResult:
    """One planner through one path, inside a one-state Discovery."""
    return DiscoverySim(planner_discovery(planner, path), {path.udp_state or TCP: path}).run()
