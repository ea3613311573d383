"""A whole discovery, sans-I/O: what a run does around its planners.

One planner per flow state (TCP and WebSocket have one, ``tcp``; UDP has
``unreplied``, ``replied`` and ``stream``) and one record per connection.
Around them, what every transport's run needs and used to repeat: the pool
sized from the server's limits, "busy" refusals, giving up on a path that
refuses us, keeping the newest lost-push connection for the after-expiry
test, the server's reports of unacknowledged pushes, and the result.

Events go in as method calls with the time they happened; commands come out.
Nothing here opens a socket or reads a clock, so a whole run steps in
virtual time (tests/core/test_discovery.py, lab/simnat.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from probe.core.commands import (
    Command,
    ConnRecord,
    Finished,
    GiveUp,
    KeepForAfterExpiry,
    Key,
    OpenConnection,
    Recorded,
    Release,
    RequestPush,
    RunFacts,
    Settled,
)
from probe.core.evidence import Bracket, FailureMode, IdleTest, Outcome, Source
from probe.core.planner import Action, Close, Finish, Open, Planner, PlannerConfig, Probe
from probe.core.progress import Progress, state_progress
from probe.core.protocol import json_number
from probe.core.results import Connections, DiscoverResult, ServerView, StateResult, shortest_state
from probe.core.survey import Claim, PoolShare, ShareKey
from probe.errors import TargetError

#: The one flow state of a TCP or WebSocket discovery.
TCP = "tcp"
#: The UDP flow state whose binding starts before the server sees it (_margin).
UNREPLIED = "unreplied"
#: The flow states a UDP discovery measures, each with its own planner.
UDP_STATES = (UNREPLIED, "replied", "stream")
#: Opening this many connections in a row failing (per flow state) means the
#: server or path refuses us: give up instead of retrying forever.
MAX_OPEN_FAILURES = 5
#: The fewest test connections a planner works with.
MIN_POOL = 2

#: Beside the RTT, how late the server's report of an unacknowledged push may come.
REPORT_MARGIN_S = 0.25
#: Retransmissions of a lost push looked ahead (the kernel gives up after 15).
RETRANSMISSIONS = 16


def timed(cfg: PlannerConfig, rtt: float, grace_s: float | None, max_conns: int) -> PlannerConfig:
    """The planner's grace and suspicion times for a path with this RTT."""
    # A lost push is retransmitted after at least 200 ms (Linux's minimum
    # RTO) plus an RTT; the grace covers one such loss on a jittery path.
    grace = grace_s if grace_s is not None else max(cfg.grace_s, 0.4 + 4 * rtt)
    suspect = min(grace / 2, max(cfg.suspect_s, 3 * rtt + 0.02))
    return replace(cfg, grace_s=grace, suspect_s=suspect, max_conns=max_conns)


def lost_push(test: IdleTest | None) -> bool:
    """Whether a connection's last test is a push declared lost and never late."""
    return test is not None and test.outcome is Outcome.FAILED and test.source is Source.DEADLINE


@dataclass
class Discovery:
    """One discovery's state; build it with :meth:`for_tcp` or :meth:`for_udp`."""

    #: What was asked for, per flow state (``max_conns``: test connections at once).
    configs: dict[str, PlannerConfig]
    udp: bool = False
    #: Keep the newest lost-push connection for the after-expiry test.
    keep_lost: bool = True
    #: Open a connection nobody speaks on, for the after-expiry test.
    want_quiet: bool = False
    #: Design connections wanted beside the pool (core/designs.py).
    want_designs: int = 0
    #: How many of them the server's limits leave room for (``size_pool``).
    design_room: int = field(init=False)
    planners: dict[str, Planner] = field(init=False)
    records: dict[Key, ConnRecord] = field(default_factory=dict)
    started: float | None = None
    #: When every planner had finished.
    settled: float | None = None
    #: The server's limits, or its "busy", made a pool smaller than asked.
    limited: bool = False
    server_limits: dict[str, float] | None = None
    #: The lost-push connection kept for the after-expiry test.
    kept: Key | None = None
    #: The after-expiry test runs on ``kept``: it is not replaced any more.
    kept_fixed: bool = False
    #: The path's round-trip time, once measured (``configure``).
    rtt_s: float = 0.0
    #: The connection idle since the start that nobody speaks on: (since, observed).
    quiet: tuple[float, str] | None = None
    #: The server's reports of pushes its TCP never saw acknowledged.
    unacked: set[Key] = field(default_factory=set)
    #: From those reports: when the push is sent again, and the RTO then;
    #: or that the server's side ended, so that it never is.
    retransmits: dict[Key, tuple[float, float]] = field(default_factory=dict)
    server_ended: set[Key] = field(default_factory=set)
    _by_session: dict[str, Key] = field(default_factory=dict)
    _failures: int = 0
    _reported: dict[str, int] = field(default_factory=dict)
    _claim: tuple[PoolShare, Claim] | None = None
    #: The most connections held at once: the planners', the kept one, the quiet one.
    _peak: int = 0

    def __post_init__(self) -> None:
        # The quiet and the kept connection count against what was asked
        # (``--parallel`` is every connection at once): the planner gets the rest.
        aside = self.want_quiet + self._kept_aside
        self.planners = {s: Planner(replace(c, max_conns=c.max_conns - aside)) for s, c in self.configs.items()}
        self.design_room = self.want_designs

    @classmethod
    def for_tcp(cls, config: PlannerConfig, after_expiry: bool = True, designs: int = 0) -> Discovery:
        """One flow state; with ``after_expiry``, a quiet connection and a kept
        lost-push one for the after-expiry test, where the pool has room;
        ``designs`` connections beside all that, not counted in ``--parallel``."""
        spare = config.max_conns - MIN_POOL
        return cls(
            {TCP: config},
            keep_lost=after_expiry and spare >= 2,
            want_quiet=after_expiry and spare >= 1,
            want_designs=designs,
        )

    @classmethod
    def for_udp(cls, config: PlannerConfig, states: tuple[str, ...], stream_gap_s: float) -> Discovery:
        # Each probe is its own binding, used once; the stream state's probe
        # becomes a stream only after its second exchange.
        single = replace(config, reuse=False)
        configs = {s: replace(single, open_delay_s=stream_gap_s) if s == "stream" else single for s in states}
        return cls(configs, udp=True)

    # Before the start ------------------------------------------------------------

    @property
    def asked(self) -> int:
        return max(cfg.max_conns for cfg in self.configs.values())

    @property
    def _kept_aside(self) -> int:
        """1 where a lost-push connection is kept beside the pool (TCP; a UDP
        probe kept is one its planner already counted)."""
        return 1 if self.keep_lost and not self.udp else 0

    @property
    def pool(self) -> int:
        return min(p.config.max_conns for p in self.planners.values())

    @property
    def grace_s(self) -> float:
        return max(p.config.grace_s for p in self.planners.values())

    def size_pool(self, limits: Any, where: str, share: PoolShare | None = None, key: ShareKey | None = None) -> bool:
        """Fit the pool to what the server's per-address limit leaves, so that a
        second run from the same address (a colleague behind the same NAT, TCP
        and WebSocket measured at once) is slower, not refused. Return whether
        a quiet connection for the after-expiry test fits too."""
        want_quiet = self.want_quiet
        if not isinstance(limits, dict):
            return want_quiet
        self.server_limits = {k: v for k, v in limits.items() if json_number(v) is not None}
        free = json_number(limits.get("per_ip_free"))
        total = json_number(limits.get("sessions_free"))
        left = min(x for x in (free, total, float("inf")) if x is not None)
        pool = self.pool
        if share is not None and key is not None and left != float("inf"):
            # Beside other runs of a survey: what they planned and have not
            # opened yet is not in the server's count, but will be.
            want = pool + want_quiet + self._kept_aside
            left, claim = share.size(key, int(left), want, self.open_now)
            self._claim = (share, claim)
        kept = self._kept_aside
        quiet = want_quiet and left - 1 - kept >= MIN_POOL
        room = int(left) - quiet - kept
        if room < MIN_POOL and kept:
            # No room to set one aside: the kept connection then takes a
            # planner's place, and the server's "busy" shrinks the pool.
            room += kept
        if room < MIN_POOL:
            raise TargetError(
                f"{where} allows only {int(left)} more connection(s) from this address and discovery needs "
                f"{MIN_POOL}; try again when other runs from here have finished",
                code="busy",
            )
        if room < pool:
            self._limit(room)
        # The bracket comes first: designs get only what the pool leaves.
        if left != float("inf"):
            self.design_room = max(0, min(self.want_designs, int(left) - quiet - kept - self.pool))
        return quiet

    def configure(self, rtt: float, grace_s: float | None) -> None:
        """Time the planners for the measured RTT (before :meth:`start`)."""
        self.rtt_s = rtt
        self.planners = {
            state: Planner(
                replace(timed(p.config, rtt, grace_s, p.config.max_conns), failure_margin_s=self._margin(state))
            )
            for state, p in self.planners.items()
        }

    def _margin(self, state: str) -> float:
        # Only an unreplied probe's binding starts before the server's idle
        # does (PlannerConfig.failure_margin_s); the others' last packet is
        # the server's own reply, as a TCP flow's is its ACK.
        return self.rtt_s if self.udp and state == UNREPLIED else 0.0

    def release_share(self) -> None:
        if self._claim is not None:
            share, claim = self._claim
            share.release(claim)
            self._claim = None

    def open_now(self) -> int:
        """Connections of this run the server counts now, control excluded."""
        return sum(r.session is not None for r in self.records.values()) + (self.quiet is not None)

    def quiet_opened(self, since: float, observed: str) -> None:
        self.quiet = (since, observed)
        self._count_held()

    # Events ------------------------------------------------------------------

    def start(self, now: float) -> list[Command]:
        self.started = now
        out: list[Command] = []
        for state, planner in self.planners.items():
            out += self._apply(state, planner.start(now), now)
        return out

    def opened(
        self,
        key: Key,
        now: float,
        rx_at: float | None = None,
        since: float | None = None,
        session: str | None = None,
        observed: str | None = None,
    ) -> list[Command]:
        """The connection said hello (TCP) or its binding is in its state (UDP)."""
        self._failures = 0
        record = self.records.get(key)
        if record is not None:
            record.session, record.observed = session, observed
        if session is not None:
            self._by_session[session] = key
        state, conn = key
        return self._apply(state, self.planners[state].opened(conn, now, rx_at, since), now)

    def open_failed(self, key: Key, now: float, busy: bool = False) -> list[Command]:
        state, conn = key
        planner = self.planners[state]
        self.records.pop(key, None)
        if busy and planner.config.max_conns > MIN_POOL:
            # Another run from this address took what welcome said was free:
            # a smaller pool, slower, rather than fail.
            self._limit(max(MIN_POOL, min(planner.config.max_conns, len(planner.conns)) - 1), state)
            return self._apply(state, planner.open_failed(conn, now), now)
        self._failures += 1
        if self._failures >= MAX_OPEN_FAILURES * len(self.planners):
            return [GiveUp()]
        return self._apply(state, planner.open_failed(conn, now), now)

    def pushed(self, key: Key, server_idle: float, now: float) -> list[Command]:
        """The server reports it sent the push after ``server_idle`` of idle."""
        record = self.records.get(key)
        if record is not None:
            record.server_idle = server_idle
        state, conn = key
        return self._apply(state, self.planners[state].pushed(conn, server_idle, now), now)

    def not_pushed(self, key: Key, now: float) -> list[Command]:
        """The server could not push: it had lost the session."""
        state, conn = key
        planner = self.planners[state]
        record = self.records.pop(key, None)
        release: list[Command] = [Release(key, record.session if record else None)]
        if self.udp:
            # Our own problem (the probe's budget, a server that forgot it),
            # not the path's: the test is dropped, not counted.
            return release + self._apply(state, planner.open_failed(conn, now), now)
        # A middlebox reset the server's side, say, while this side heard
        # nothing: from here the flow died silently. Close our end too.
        return release + self._apply(state, planner.ended(conn, FailureMode.SILENT_DROP, now), now)

    def arrived(self, key: Key, server_idle: float | None, now: float) -> list[Command]:
        """A push arrived (and was answered at once, on TCP)."""
        record = self.records.get(key)
        if self.udp:
            if record is None or record.arrived:
                return []  # a second copy, or a probe already done with
            record.arrived = True
            # The copies carry no idle; the server's report of the push does.
            server_idle = server_idle if server_idle is not None else record.server_idle
        state, conn = key
        return self._apply(state, self.planners[state].arrived(conn, server_idle, now), now)

    def ended(self, key: Key, mode: FailureMode, now: float) -> list[Command]:
        """The connection was reset or closed: our end is done with, and the
        server may forget its session (its side may still think it alive)."""
        state, conn = key
        record = self.records.pop(key, None)
        if self.kept == key:
            self.kept = None
        release: list[Command] = [Release(key, record.session)] if record is not None else []
        return release + self._apply(state, self.planners[state].ended(conn, mode, now), now)

    def tick(self, now: float) -> list[Command]:
        out: list[Command] = []
        for state, planner in self.planners.items():
            wake = planner.next_wakeup()
            if planner.finished is None and wake is not None and wake <= now:
                out += self._apply(state, planner.tick(now), now)
        return out

    def server_report(
        self,
        session: str,
        now: float = 0.0,
        retransmit_in_s: float | None = None,
        rto_s: float | None = None,
        ended: bool = False,
    ) -> bool:
        """The server reports a push on ``session`` it never saw acknowledged,
        and (where it can tell) when its TCP will send it again, or that its
        side ended."""
        key = self._by_session.get(session)
        if key is None:
            return False
        self.unacked.add(key)
        if ended:
            self.server_ended.add(key)
        if retransmit_in_s is not None and rto_s is not None and rto_s > 0:
            # The report took half an RTT to come, the retransmission takes
            # as long: its arrival here is ``retransmit_in_s`` from now.
            self.retransmits[key] = (now + retransmit_in_s, rto_s)
        return True

    def lost_push_listen(self, key: Key, now: float) -> float | None:
        """How long the after-expiry test on ``key`` must listen, from the
        server's report on its lost push; None where there was none.

        Where the server's side ended, nothing of the push can come: an
        answer (the server's RST through a flow our message re-creates) takes
        an RTT, and the grace covers one lost packet. Otherwise the answer
        comes behind the server's next retransmission of the push."""
        if key in self.server_ended:
            return self.grace_s
        resent = self.retransmission_after(key, now)
        if resent is None:
            return None
        return max(0.0, resent - now) + 2 * self.rtt_s + REPORT_MARGIN_S

    def retransmission_after(self, key: Key, at: float) -> float | None:
        """When the server's next retransmission of the lost push on ``key``
        sent after ``at`` arrives here; None where no report said."""
        known = self.retransmits.get(key)
        if known is None:
            return None
        arrives, rto = known
        # Each retransmission doubles the timeout before the next (RFC 6298).
        interval = 2 * rto
        for _ in range(RETRANSMISSIONS):
            if arrives >= at:
                return arrives
            arrives += interval
            interval *= 2
        return None

    def forget_kept(self) -> None:
        """The transport could not keep the connection after all."""
        if self.kept is not None:
            self.records.pop(self.kept, None)
            self.kept = None

    # Outputs -------------------------------------------------------------------

    def next_wakeup(self) -> float | None:
        wakes = [w for p in self.planners.values() if p.finished is None and (w := p.next_wakeup()) is not None]
        return min(wakes) if wakes else None

    def last_test(self, key: Key) -> IdleTest | None:
        state, conn = key
        return next((t for t in reversed(self.planners[state].evidence.tests) if t.conn == conn), None)

    def lost_tests(self) -> dict[Key, IdleTest]:
        """Every connection's lost push, by connection."""
        return {
            (state, t.conn): t
            for state, p in self.planners.items()
            for t in p.evidence.tests
            if t.source is Source.DEADLINE and t.outcome is Outcome.FAILED
        }

    def reports_due(self, push_report_s: float) -> float | None:
        """Until when (seconds since the start) the server's reports on the lost
        pushes may still come; None when there is none to wait for."""
        lost = self.lost_tests()
        if not lost or lost.keys() <= self.unacked:
            return None
        # The server looks ``push_report_s`` after it pushed (half an RTT
        # after we asked) and its report takes half an RTT back; the margin
        # is for jitter, not for a lost report (that one is only not counted).
        margin = 2 * self.rtt_s + REPORT_MARGIN_S
        return max((t.asked_at or 0.0) for t in lost.values()) + push_report_s + margin

    def longest(self, attr: str) -> float | None:
        """The largest ``attr`` of the flow states' brackets (UDP's refresh test)."""
        known = [v for p in self.planners.values() if (v := getattr(p.bracket(), attr)) is not None]
        return max(known) if known else None

    def shortest(self) -> str:
        """The flow state whose bracket is the answer."""
        return shortest_state(self._states(False)) or next(iter(self.planners))

    def bracket(self) -> Bracket:
        return self.planners[self.shortest()].bracket()

    def progress(self, target: str, now: float) -> Progress:
        """What the live view shows at ``now``: one block per flow state."""
        started = self.started if self.started is not None else now
        views = tuple(state_progress(p, started, now, s if self.udp else None) for s, p in self.planners.items())
        return Progress(target, now - started, views)

    def result(self, now: float, facts: RunFacts) -> DiscoverResult:
        started = self.started if self.started is not None else now
        states = self._states(facts.interrupted)
        shortest = self.shortest()
        planner = self.planners[shortest]
        stats = [p.stats for p in self.planners.values()]
        if self.udp:
            tests = [replace(t, state=s) for s, p in self.planners.items() for t in p.evidence.tests]
        else:
            tests = list(planner.evidence.tests)
        # A transport that counts its own opens counts them all; else the
        # planners', and what was held beside them.
        opened = (
            facts.opened
            if facts.opened is not None
            else sum(s.opened for s in stats) + facts.side_connections + facts.design_connections
        )
        return DiscoverResult(
            target=facts.target,
            transport=facts.transport,
            bracket=planner.bracket(),
            tests=tests,
            wall_s=(self.settled if self.settled is not None else now) - started,
            total_s=now - started,
            nat=facts.nat,
            max_idle_s=self.configs[shortest].max_idle_s,
            reason=states[shortest].reason,
            interrupted=facts.interrupted,
            server=facts.server,
            connections=Connections(
                max_open=self._peak + facts.side_connections + facts.design_connections,
                opened=opened,
                asked=self.asked,
                pool=planner.config.max_conns,
                limited_by_server=self.limited,
                server_limits=self.server_limits,
                designs=facts.design_connections,
            ),
            target_width_s=planner.target_width(planner.bracket()),
            grace_s=planner.config.grace_s,
            rtt_s=facts.rtt_s,
            after_expiry=facts.after_expiry,
            server_view=ServerView() if self.udp else ServerView(len(self.unacked)),
            ip_version=facts.ip_version,
            tls=facts.tls,
            states=states if self.udp else None,
            inbound_refresh=facts.inbound_refresh,
            control=facts.control,
            proxy=facts.proxy,
            designs=facts.designs,
        )

    # Inside --------------------------------------------------------------------

    def _states(self, interrupted: bool) -> dict[str, StateResult]:
        return {
            s: StateResult(p.bracket(), "interrupted" if interrupted else (p.finished or "incomplete"),
                           len(p.evidence.tests))
            for s, p in self.planners.items()
        }  # fmt: skip

    def _limit(self, max_conns: int, state: str | None = None) -> None:
        for name in [state] if state is not None else list(self.planners):
            self.planners[name].limit(max_conns)
        self.limited = True

    def _apply(self, state: str, actions: list[Action], now: float) -> list[Command]:
        planner = self.planners[state]
        out: list[Command] = []
        for action in actions:
            if isinstance(action, Finish):
                out.append(Finished(state, action.reason))
                continue
            key = (state, action.conn)
            if isinstance(action, Open):
                self.records[key] = ConnRecord(key)
                out.append(OpenConnection(key))
            elif isinstance(action, Probe):
                record = self.records.get(key)
                age = planner.conns[action.conn].age(now)
                out.append(RequestPush(key, record.session if record else None, age))
            elif isinstance(action, Close):
                out += self._close(key)
        done = self._reported.get(state, 0)
        out += [Recorded(test, state if self.udp else None) for test in planner.evidence.tests[done:]]
        self._reported[state] = len(planner.evidence.tests)
        if self.settled is None and all(p.finished is not None for p in self.planners.values()):
            self.settled = now
            out.append(Settled())
        self._count_held()
        return out

    def _count_held(self) -> None:
        self._peak = max(self._peak, len(self.records) + (self.quiet is not None))

    def _close(self, key: Key) -> list[Command]:
        record = self.records.get(key)
        if not (self.keep_lost and record is not None and lost_push(self.last_test(key))):
            self.records.pop(key, None)
            return [Release(key, record.session if record else None)]
        if self.kept_fixed:
            # The after-expiry test already speaks on the one kept.
            self.records.pop(key, None)
            return [Release(key, record.session)]
        told = self.retransmits.keys() | self.server_ended
        if self.kept is not None and self.kept in told and key not in told:
            # The one kept has the server's word on when its push is sent
            # again, which makes its test short: keep it.
            self.records.pop(key, None)
            return [Release(key, record.session)]
        out: list[Command] = []
        if self.kept is not None:
            # Only the newest is kept: the one it replaces is closed.
            old = self.records.pop(self.kept, None)
            out.append(Release(self.kept, old.session if old else None))
        self.kept = key
        out.append(KeepForAfterExpiry(key))
        return out
