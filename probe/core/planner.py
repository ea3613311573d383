"""One-pass discovery planner: which idle connection to test, and when.

Sans-I/O: the planner never touches a socket or a clock. The runner tells it
what happened (a connection opened, a push arrived, a connection ended) and
the current time; it answers with actions (open, probe, close, finish) and
the next time it wants to be woken.

How it finds the timeout T (see docs/discovery.md for the numbers):

* Idle connections of many ages exist at once. Connections are opened at
  staggered times, and a connection whose probe succeeded starts a new idle
  period at once, so the pool keeps a spread of ages with a bounded count.
* A probe asks the server, over a separate busy control connection, to push
  now on an idle connection. The idle connection itself stays untouched, so
  its age is the idle time being tested; the server reports the exact idle
  it saw.
* Scouting: while nothing has failed, the oldest connection is probed as late
  as the time goal allows (``wall_factor * lower + wall_slack``), so a
  failure is seen by about 1.1 T.
* Refining: once a probe fails (or a connection is reset or closed while
  idle), the connections whose ages lie inside the bracket are probed at
  once; their answers narrow the bracket to the spacing of their ages.
* Contradictions (a survival above a failure) widen the bracket and are kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum

from probe.core.evidence import Bracket, Evidence, FailureMode, IdleTest, Outcome, Source

#: Below this many test connections a reused pool opens on the wider schedule.
SMALL_POOL = 36


@dataclass(frozen=True)
class PlannerConfig:
    """Tunables. Defaults meet the goal in docs/discovery.md."""

    #: Longest idle worth testing: just above RFC 5382's 2 h 4 min.
    max_idle_s: float = 7800.0
    #: Bracket width wanted; None means max(resolution_frac * T, resolution_floor_s).
    resolution_s: float | None = None
    resolution_frac: float = 0.02
    resolution_floor_s: float = 0.5
    #: IdleTest connections open at once (the control connection is not counted).
    max_conns: int = 31
    #: The answer should come by wall_factor * T + wall_slack_s.
    wall_factor: float = 1.10
    wall_slack_s: float = 2.0
    #: How long after a probe a missing push counts as lost.
    grace_s: float = 1.0
    #: How long after a probe a missing push is suspected, and refining starts.
    suspect_s: float = 0.1
    #: Failed connections stay open this long so a late push is still seen.
    linger_s: float = 2.0
    #: New connections keep the youngest idle start within this gap of now:
    #: max(open_gap_abs_s, open_gap_frac * elapsed); None: ``gap_frac`` picks it.
    open_gap_abs_s: float = 0.05
    open_gap_frac: float | None = None
    budget_s: float | None = None
    expect_min_s: float | None = None
    #: Whether a connection whose push arrived is tested again. UDP says no:
    #: the push was the binding's first reply, so the flow is no longer in
    #: the state under test; the runner gets a Close and the pool a new one.
    reuse: bool = True
    #: Seconds from Open to the start of the idle period (a UDP stream probe
    #: exchanges twice, 2 s apart, first): the time goal counts from there.
    open_delay_s: float = 0.0
    #: Added to the idle a failed test is charged. A UDP unreplied probe's
    #: binding began when its hello crossed the NAT, up to one RTT before the
    #: server (whose idle is measured) got it: a failure proves only that
    #: the binding lived less than the idle plus that RTT.
    failure_margin_s: float = 0.0

    @property
    def gap_frac(self) -> float:
        """The opening gap's share of the elapsed time.

        A reused pool smaller than ``SMALL_POOL`` spreads its first ages wider
        (15%): too few connections to scout every 8% step leave the refinement
        short of idle ages inside the bracket otherwise. Measured with
        benchmarks/discovery_sweep.py (docs/discovery.md, "Why not 32")."""
        if self.open_gap_frac is not None:
            return self.open_gap_frac
        return 0.15 if self.reuse and self.max_conns < SMALL_POOL else 0.08

    def __post_init__(self) -> None:
        if self.max_conns < 2:
            raise ValueError("the planner needs at least 2 test connections")
        if self.max_idle_s <= 0:
            raise ValueError("max_idle_s must be positive")


# Actions -------------------------------------------------------------------


@dataclass(frozen=True)
class Open:
    """Open a test connection, say hello and leave it idle."""

    conn: int


@dataclass(frozen=True)
class Probe:
    """Ask the server to push now on an idle connection."""

    conn: int


@dataclass(frozen=True)
class Close:
    conn: int


class FinishReason(StrEnum):
    """Why the planner stopped."""

    #: The bracket is as narrow as asked.
    RESOLVED = "resolved"
    #: Every idle up to --max-idle survived.
    MAX_IDLE = "max_idle"
    #: The path is proven to forget flows sooner than --expect-min.
    EXPECT_MIN = "expect_min"
    BUDGET = "budget"
    #: Contradicting evidence (a swept table): mapped for a while, then stopped.
    INCONSISTENT = "inconsistent"


@dataclass(frozen=True)
class Finish:
    reason: FinishReason


Action = Open | Probe | Close | Finish


_EPS = 1e-6
#: Refine probes start this fraction of the target width above what survived.
_FLOOR = 0.25
_MIN_WAIT_S = 1e-3


class ConnState(StrEnum):
    OPENING = "opening"
    IDLE = "idle"
    PROBING = "probing"
    #: A failed connection kept open for a while in case the push was only late.
    LINGER = "linger"


@dataclass
class ConnView:
    """What the planner knows of one connection (also shown by the live view)."""

    id: int
    state: ConnState
    #: When this side last sent on the connection (its idle period began).
    idle_since: float
    #: When this side last received from the server. A proxy that times out on
    #: upstream silence counts from here, a little before ``idle_since``.
    rx_at: float | None = None
    probe_at: float | None = None
    server_idle_s: float | None = None
    test: IdleTest | None = None
    linger_until: float = 0.0
    #: A scout probe whose push is overdue starts a refine round early.
    scout: bool = False

    def age(self, now: float) -> float:
        return now - self.idle_since


@dataclass
class PlannerStats:
    opened: int = 0
    max_open: int = 0
    probes: int = 0


@dataclass
class _Round:
    """One step of the planner: the moment it runs, what it decides, and when
    it wants to be woken; each helper adds to the same lists."""

    now: float
    actions: list[Action] = field(default_factory=list)
    wakeups: list[float] = field(default_factory=list)


@dataclass
class Planner:
    config: PlannerConfig
    evidence: Evidence = field(default_factory=Evidence)
    stats: PlannerStats = field(default_factory=PlannerStats)
    started_at: float = 0.0
    finished: FinishReason | None = None
    conns: dict[int, ConnView] = field(default_factory=dict)
    _next_id: int = 0
    _wakeup: float | None = None
    _inconsistent_until: float | None = None
    #: The connection the next scout will probe, and when (for displays).
    next_scout: tuple[int, float] | None = None
    _last_open: float = -math.inf

    # Inputs -----------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        self.started_at = now
        return self._step(now)

    def opened(self, conn: int, now: float, rx_at: float | None = None, since: float | None = None) -> list[Action]:
        """The connection said hello and has been idle since ``since`` (default
        ``now``: a UDP binding is known only once the server reports it, after
        its idle period began); the server's last packet came at ``rx_at``."""
        view = self.conns.get(conn)
        if view is not None and view.state is ConnState.OPENING:
            view.state = ConnState.IDLE
            view.idle_since = now if since is None else since
            view.rx_at = view.idle_since if rx_at is None else rx_at
        return self._step(now)

    def open_failed(self, conn: int, now: float) -> list[Action]:
        self.conns.pop(conn, None)
        return self._step(now)

    def pushed(self, conn: int, server_idle_s: float, now: float) -> list[Action]:
        """The server reports it sent the push after ``server_idle_s`` of idle."""
        view = self.conns.get(conn)
        if view is not None:
            view.server_idle_s = server_idle_s
            if view.test is not None:
                # Already declared lost: charge the longer of the two measures.
                view.test.idle_s = max(view.test.idle_s, server_idle_s + self.config.failure_margin_s)
        return self._step(now)

    def arrived(self, conn: int, server_idle_s: float | None, now: float) -> list[Action]:
        """A push arrived on ``conn``; the runner has already answered it, so
        the connection is idle again from ``now``."""
        view = self.conns.get(conn)
        if view is None:
            return self._step(now)
        idle = server_idle_s if server_idle_s is not None else self._client_idle(view, now)
        if view.state is ConnState.LINGER and view.test is not None:
            # Declared lost, yet it came: the path kept the flow after all.
            view.test.outcome = Outcome.SURVIVED
            view.test.failure_mode = None
            view.test.late = True
            view.test.idle_s = idle
        elif view.state in (ConnState.PROBING, ConnState.IDLE):
            # IDLE: an unasked push (the server's backstop), still a survived idle.
            self._record(view, idle, Outcome.SURVIVED, None, now, source=Source.PUSH)
        else:
            return self._step(now)
        if not self.config.reuse:
            del self.conns[conn]
            return [Close(conn), *self._step(now)]
        # The runner answered at once: a new idle period starts now.
        view.state = ConnState.IDLE
        view.idle_since = view.rx_at = now
        view.probe_at = view.server_idle_s = None
        view.test = None
        return self._step(now)

    def ended(self, conn: int, mode: FailureMode, now: float) -> list[Action]:
        """The connection was reset or closed by the path or the peer."""
        view = self.conns.pop(conn, None)
        if view is None:
            return self._step(now)
        if view.state in (ConnState.IDLE, ConnState.PROBING):
            # The connection ended at ``now`` (or was gone when probed): it
            # had been idle this long at most, counted from the last data in.
            end = view.probe_at if view.state is ConnState.PROBING and view.probe_at is not None else now
            self._record(view, self._failed_idle(view, end), Outcome.FAILED, mode, now, source=Source.DEATH)
        elif view.state is ConnState.LINGER and view.test is not None:
            # A silent loss that later turned into a reset or close tells how.
            view.test.failure_mode = mode
        return self._step(now)

    def tick(self, now: float) -> list[Action]:
        return self._step(now)

    def limit(self, max_conns: int) -> None:
        """Keep at most ``max_conns`` open from now on (the server's limit, or
        its "busy"); connections already open stay until they are done."""
        self.config = replace(self.config, max_conns=max_conns)

    # Outputs ----------------------------------------------------------------

    def next_wakeup(self) -> float | None:
        return self._wakeup

    def bracket(self) -> Bracket:
        return self.evidence.bracket()

    def target_width(self, bracket: Bracket) -> float:
        cfg = self.config
        if cfg.resolution_s is not None:
            return cfg.resolution_s
        scale = bracket.longest_survived or 0.0
        return max(cfg.resolution_frac * scale, cfg.resolution_floor_s)

    # Internals --------------------------------------------------------------

    def _failed_idle(self, view: ConnView, end: float) -> float:
        """The idle a failure is charged to: the longest measure available, so
        that an upper bound is never understated."""
        since = view.idle_since if view.rx_at is None else min(view.rx_at, view.idle_since)
        return max(end - since, view.server_idle_s or 0.0) + self.config.failure_margin_s

    def _client_idle(self, view: ConnView, now: float) -> float:
        end = view.probe_at if view.probe_at is not None else now
        return max(0.0, end - view.idle_since)

    def _record(
        self,
        view: ConnView,
        idle: float,
        outcome: Outcome,
        mode: FailureMode | None,
        now: float,
        source: Source,
    ) -> IdleTest:
        test = IdleTest(
            conn=view.id,
            idle_s=idle,
            outcome=outcome,
            failure_mode=mode,
            idle_since=view.idle_since - self.started_at,
            asked_at=None if view.probe_at is None else view.probe_at - self.started_at,
            result_at=now - self.started_at,
            source=source,
        )
        self.evidence.add(test)
        return test

    def _step(self, now: float) -> list[Action]:
        if self.finished is not None:
            return []
        step = _Round(now)
        actions, wakeups = step.actions, step.wakeups
        self._expire(step)
        bracket = self.evidence.bracket()
        reason = self._finish_reason(bracket, now)
        if reason is not None:
            return self._finish(reason, actions)
        probing = [v for v in self.conns.values() if v.state is ConnState.PROBING]
        if bracket.outer_upper is None:
            self._scout(step, bracket, probing)
        else:
            self._refine(step, bracket, probing)
        self._keep_pool(step)
        cfg = self.config
        if cfg.budget_s is not None:
            wakeups.append(self.started_at + cfg.budget_s)
        if self._inconsistent_until is not None:
            wakeups.append(self._inconsistent_until)
        # Never ask to be woken for a moment already past: rounding could
        # otherwise spin the caller in a loop with nothing to do.
        self._wakeup = max(min(wakeups), now + _MIN_WAIT_S) if wakeups else None
        self.stats.max_open = max(self.stats.max_open, len(self.conns))
        return actions

    def _expire(self, step: _Round) -> None:
        cfg, now = self.config, step.now
        for view in list(self.conns.values()):
            if view.state is ConnState.PROBING and view.probe_at is not None:
                deadline = view.probe_at + cfg.grace_s
                if now >= deadline:
                    idle = self._failed_idle(view, view.probe_at)
                    view.test = self._record(view, idle, Outcome.FAILED, FailureMode.SILENT_DROP, now, Source.DEADLINE)
                    view.state = ConnState.LINGER
                    view.linger_until = now + cfg.linger_s
                else:
                    step.wakeups.append(deadline)
            if view.state is ConnState.LINGER:
                if now >= view.linger_until:
                    del self.conns[view.id]
                    step.actions.append(Close(view.id))
                else:
                    step.wakeups.append(view.linger_until)

    def _finish_reason(self, bracket: Bracket, now: float) -> FinishReason | None:
        cfg = self.config
        if cfg.expect_min_s is not None and bracket.upper is not None and bracket.upper < cfg.expect_min_s:
            return FinishReason.EXPECT_MIN
        if cfg.budget_s is not None and now - self.started_at >= cfg.budget_s:
            return FinishReason.BUDGET
        if any(v.state is ConnState.PROBING for v in self.conns.values()):
            return None
        if not bracket.consistent:
            # Contradictions mean the path has no sharp timeout (a table
            # swept now and then, flows expiring at random). Keep testing a
            # little to map the blurred zone, then stop rather than chase it.
            if self._inconsistent_until is None:
                longest = bracket.longest_survived or 0.0
                extra = max(2 * cfg.grace_s, (cfg.wall_factor - 1.0) * longest + cfg.wall_slack_s)
                self._inconsistent_until = now + extra
            if now >= self._inconsistent_until:
                return FinishReason.INCONSISTENT
        if bracket.outer_upper is None:
            if bracket.longest_survived is not None and bracket.longest_survived >= cfg.max_idle_s - 1e-9:
                return FinishReason.MAX_IDLE
            return None
        width = bracket.outer_upper - (bracket.longest_survived or 0.0)
        if width <= self.target_width(bracket) + 1e-9:
            return FinishReason.RESOLVED
        return None

    def _finish(self, reason: FinishReason, actions: list[Action]) -> list[Action]:
        self.finished = reason
        self._wakeup = None
        for conn in list(self.conns):
            actions.append(Close(conn))
        self.conns.clear()
        actions.append(Finish(reason))
        return actions

    def _probe(self, step: _Round, view: ConnView, scout: bool = False) -> None:
        now = step.now
        view.scout = scout
        view.state = ConnState.PROBING
        view.probe_at = now
        view.server_idle_s = None
        self.stats.probes += 1
        step.actions.append(Probe(view.id))
        step.wakeups.append(now + self.config.suspect_s)
        step.wakeups.append(now + self.config.grace_s)

    def _idle_conns(self) -> list[ConnView]:
        return sorted(
            (v for v in self.conns.values() if v.state is ConnState.IDLE),
            key=lambda v: v.idle_since,
        )

    def _scout(self, step: _Round, bracket: Bracket, probing: list[ConnView]) -> None:
        cfg, now = self.config, step.now
        if probing:
            for view in probing:
                if view.probe_at is None or not view.scout:
                    continue
                suspect_at = view.probe_at + cfg.suspect_s
                if now >= suspect_at:
                    # The push is overdue: refine at once inside the suspected
                    # bracket rather than wait out the whole grace period.
                    view.scout = False
                    age = self._client_idle(view, now)
                    self._probe_inside(step, bracket.longest_survived or 0.0, age, bracket)
                else:
                    step.wakeups.append(suspect_at)
            return
        idle = self._idle_conns()
        if not idle:
            return
        lower = bracket.longest_survived or 0.0
        oldest = idle[0]
        due = self.started_at + cfg.open_delay_s + cfg.wall_factor * lower + cfg.wall_slack_s - cfg.suspect_s
        due = min(due, oldest.idle_since + cfg.max_idle_s)
        if due - oldest.idle_since < lower + cfg.resolution_floor_s / 2:
            # The pool is behind schedule (too few connections for the
            # range): let the oldest age a step beyond what survived, so the
            # search still moves geometrically rather than creeping.
            due = oldest.idle_since + max(lower * cfg.wall_factor, lower + cfg.resolution_floor_s / 2)
        if now >= due:
            self.next_scout = None
            self._probe(step, oldest, scout=True)
        else:
            self.next_scout = (oldest.id, due)
            step.wakeups.append(due)

    def _refine(self, step: _Round, bracket: Bracket, probing: list[ConnView]) -> None:
        if probing:
            return
        # Refine above everything that survived: where survivals and failures
        # overlap (a NAT that sweeps its table), what is left to find is the
        # idle beyond which flows always fail.
        lower = bracket.longest_survived or 0.0
        upper = bracket.outer_upper
        assert upper is not None
        self._probe_inside(step, lower, upper, bracket)

    def _probe_inside(self, step: _Round, lower: float, upper: float, bracket: Bracket) -> None:
        """Probe a spread of idle connections whose ages lie in (lower, upper).

        Chosen from the youngest up, at least ``spacing`` apart: a timeout just
        above ``lower`` (the likelier case right after a scout step) is then
        closed in this round; the oldest candidate is added if the gap it
        leaves below ``upper`` is wider than the target.
        """
        now = step.now
        width = self.target_width(bracket)
        spacing = 0.45 * width
        floor = lower + _FLOOR * width
        eligible: list[ConnView] = []
        for view in self._idle_conns():
            age = view.age(now)
            if age >= upper:
                # Already idle longer than a known failure: it tells nothing.
                continue
            if age < floor - _EPS:
                step.wakeups.append(view.idle_since + floor)
                break
            eligible.append(view)
        chosen: list[ConnView] = []
        last = -math.inf
        for view in reversed(eligible):
            age = view.age(now)
            if age - last >= spacing:
                chosen.append(view)
                last = age
        if eligible and eligible[0] not in chosen and upper - last > width:
            chosen.append(eligible[0])
        for view in chosen:
            self._probe(step, view)

    def _keep_pool(self, step: _Round) -> None:
        """Open connections at staggered times until the cap is reached.

        Gaps grow with elapsed time, so the pool holds a spread of ages at
        every scale; connections whose probe succeeded rejoin it as young
        ones, which is what lets a bounded pool last for hours.
        """
        cfg, now = self.config, step.now
        if len(self.conns) >= cfg.max_conns:
            return
        gap = max(cfg.open_gap_abs_s, cfg.gap_frac * (self._last_open - self.started_at))
        due = self._last_open + gap
        if now >= due - 1e-9:
            conn = self._next_id
            self._next_id += 1
            self.conns[conn] = ConnView(conn, ConnState.OPENING, idle_since=now)
            self.stats.opened += 1
            self._last_open = now
            step.actions.append(Open(conn))
            due = now + max(cfg.open_gap_abs_s, cfg.gap_frac * (now - self.started_at))
        step.wakeups.append(due)
