"""UDP discovery: the one-pass planner, once per flow state, over UDP probes.

A TCP (or WebSocket) control connection carries every request; each probe is
its own UDP socket, so its own NAT binding, used for one test only. Three
planners run at once, one per flow state (docs/discovery.md):

* ``unreplied``: one datagram out; the server's push is the first packet back;
* ``replied``: one request, one immediate reply, then idle;
* ``stream``: a reply, another exchange ``STREAM_GAP_S`` after the first
  packet (conntrack then treats the flow as a stream), then idle.

A push goes out as up to three copies and the control connection confirms
they were sent, so a lost datagram is not taken for an expired binding. One
more probe measures whether the server's traffic alone keeps a binding alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from probe.core.after_expiry import udp_after_expiry
from probe.core.evidence import Outcome, Source
from probe.core.planner import Action, Close, Finish, Open, Planner, PlannerConfig, Probe
from probe.core.progress import Progress, state_progress
from probe.core.protocol import json_number
from probe.core.results import DiscoverResult, StateResult, shortest_state
from probe.core.targets import Target
from probe.core.udp_refresh import RefreshEvidence, beat_interval
from probe.core.udp_wire import Kind
from probe.errors import TargetError
from probe.net.client import nat_facts
from probe.net.dial import Endpoint, dial
from probe.run.control import RunEvents, keep_busy, measure_rtt, stop, timed
from probe.run.udp_session import STATES, STREAM_GAP_S, UdpProbe, UdpSession, require_udp

Observer = Callable[[dict[str, Any]], None]

#: Probes the server refused or that never bound, in a row, before giving up.
MAX_OPEN_FAILURES = 5
#: The fewest probes a state's planner works with.
MIN_POOL = 2


@dataclass(frozen=True)
class UdpDiscoverOptions:
    target: Target
    #: The control connection's server, over TCP or WebSocket.
    control: Endpoint
    planner: PlannerConfig
    grace_s: float | None = None
    states: tuple[str, ...] = STATES
    inbound_refresh: bool = True


class UdpDiscoverRun(RunEvents[Callable[[], None]]):
    """One UDP discovery. ``result()`` gives what is known, at any moment."""

    def __init__(
        self, options: UdpDiscoverOptions, clock: Callable[[], float] = time.monotonic, observer: Observer | None = None
    ) -> None:
        super().__init__(clock, observer)
        self.options = options
        cfg = replace(options.planner, reuse=False)
        self.planners: dict[str, Planner] = {s: Planner(self._for_state(cfg, s)) for s in options.states}
        self.settled: float | None = None
        self.server_name: str | None = None
        self.rtt_s: float | None = None
        self.ip_version = 4
        self.inbound_refresh: bool | None = None
        self._session: UdpSession | None = None
        self._probes: dict[tuple[str, int], UdpProbe] = {}
        self._open_failures = 0
        self._reported: dict[str, int] = {}
        self._refresh: RefreshEvidence | None = None
        self._refresh_probe: UdpProbe | None = None
        self._refresh_changed = asyncio.Event()
        #: The newest probe whose push was lost, kept for the after-expiry test.
        self._lost: UdpProbe | None = None
        self.after_expiry: dict[str, Any] | None = None

    @staticmethod
    def _for_state(cfg: PlannerConfig, state: str) -> PlannerConfig:
        return replace(cfg, open_delay_s=STREAM_GAP_S) if state == "stream" else cfg

    @property
    def grace_s(self) -> float:
        return max(p.config.grace_s for p in self.planners.values())

    # Public --------------------------------------------------------------

    async def run(self) -> DiscoverResult:
        opts = self.options
        control = await dial(opts.control)
        helpers: list[asyncio.Task[Any]] = []
        session = UdpSession(control, opts.target, self.clock, opts.control.timeout_s, self._fail)
        session.on_push = self._push_arrived
        session.on_pushed = self._pushed
        try:
            welcome = await control.hello(opts.control.token, opts.control.timeout_s)
            require_udp(welcome.raw, control.where, opts.target)
            self._session = session
            self.server_name = welcome.server
            self.rtt_s = await measure_rtt(control, self.clock, opts.control.timeout_s)
            for state, planner in self.planners.items():
                cfg = planner.config
                self.planners[state] = Planner(timed(cfg, self.rtt_s, opts.grace_s, cfg.max_conns))
            session.wait_s = self.grace_s
            helpers.append(asyncio.create_task(session.reader()))
            helpers.append(asyncio.create_task(keep_busy(control, self._fail)))
            self._emit("start", target=str(opts.target), control=str(opts.control.target), rtt_s=round(self.rtt_s, 5))
            self.started = self.clock()
            if opts.inbound_refresh:
                helpers.append(asyncio.create_task(self._refresh_test(session)))
            with self.signals():
                await self._loop()
                if not self.interrupted:
                    await asyncio.gather(self._await_refresh_verdict(), self._after_expiry(session))
        finally:
            for task in helpers:
                task.cancel()
            for probe in self._probes.values():
                if probe.task is not None:
                    probe.task.cancel()
            session.close_all()
            control.abort()
            await stop(helpers)
        result = self.result()
        self._emit("result", result=result.to_json())
        return result

    def progress(self, now: float) -> Progress:
        """What the live view shows at ``now``: one block per flow state."""
        started = self.started if self.started is not None else now
        views = tuple(state_progress(p, started, now, state) for state, p in self.planners.items())
        return Progress(str(self.options.target), now - started, views)

    def result(self) -> DiscoverResult:
        now = self.clock()
        started = self.started if self.started is not None else now
        states = {
            name: StateResult(p.bracket(), "interrupted" if self.interrupted else (p.finished or "incomplete"),
                              len(p.evidence.tests))
            for name, p in self.planners.items()
        }  # fmt: skip
        shortest = shortest_state(states) or self.options.states[0]
        planner = self.planners[shortest]
        tests = [replace(t, state=name) for name, p in self.planners.items() for t in p.evidence.tests]
        cfg = self.options.planner
        session = self._session
        return DiscoverResult(
            target=str(self.options.target),
            transport="udp",
            bracket=planner.bracket(),
            tests=tests,
            wall_s=(self.settled if self.settled is not None else now) - started,
            total_s=now - started,
            nat=(session.nat if session is not None else {}) or nat_facts("", ""),
            max_idle_s=cfg.max_idle_s,
            reason="interrupted" if self.interrupted else states[shortest].reason,
            interrupted=self.interrupted,
            server=self.server_name,
            connections={
                "max_open": sum(p.stats.max_open for p in self.planners.values()) + 2,
                "opened": (session.opened if session is not None else 0) + 1,
                "asked": self.options.planner.max_conns,
                "pool": planner.config.max_conns,
                "limited_by_server": any(p.config.max_conns < cfg.max_conns for p in self.planners.values()),
                "server_limits": None,
            },
            target_width_s=planner.target_width(planner.bracket()),
            grace_s=planner.config.grace_s,
            rtt_s=self.rtt_s,
            after_expiry=self.after_expiry,
            ip_version=self.ip_version,
            states=states,
            inbound_refresh=self.inbound_refresh,
            control=str(self.options.control.target),
        )

    # Event plumbing ----------------------------------------------------------

    def _post(self, state: str, call: Callable[[], list[Action]]) -> None:
        self._events.put_nowait(lambda: self._apply(state, call()))

    async def _loop(self) -> None:
        now = self.clock()
        for state, planner in self.planners.items():
            self._apply(state, planner.start(now))
        while True:
            running = [p for p in self.planners.values() if p.finished is None]
            if not running:
                self.settled = self.clock()
                return
            wakes = [w for w in (p.next_wakeup() for p in running) if w is not None]
            event: Callable[[], None] | None
            try:
                async with asyncio.timeout(max(0.0, min(wakes) - self.clock()) if wakes else None):
                    event = await self._events.get()
            except TimeoutError:
                now = self.clock()
                for state, planner in self.planners.items():
                    wake = planner.next_wakeup()
                    if planner.finished is None and wake is not None and wake <= now:
                        self._apply(state, planner.tick(now))
                continue
            if self._fatal is not None:
                raise self._fatal
            if event is None:
                if self.interrupted:
                    return
                continue
            event()

    def _apply(self, state: str, actions: list[Action]) -> None:
        planner = self.planners[state]
        session = self._session
        assert session is not None
        for action in actions:
            if isinstance(action, Open):
                task = asyncio.create_task(self._bind(state, action.conn))
                self._probes[(state, action.conn)] = UdpProbe((state, action.conn), task=task)
            elif isinstance(action, Probe):
                probe = self._probes[(state, action.conn)]
                session.push(probe, f"p.{state}.{action.conn}")
                age = planner.conns[action.conn].age(self.clock())
                self._emit("probe", state=state, conn=action.conn, age_s=round(age, 3))
            elif isinstance(action, Close):
                closing = self._probes.pop((state, action.conn), None)
                if closing is not None:
                    self._close(state, closing)
            elif isinstance(action, Finish):
                self._emit("finish", state=state, reason=action.reason)
        reported = self._reported.get(state, 0)
        for test in planner.evidence.tests[reported:]:
            self._emit("test", **(test.to_json() | {"state": state}))
        self._reported[state] = len(planner.evidence.tests)

    # Probes ------------------------------------------------------------------

    def _close(self, state: str, probe: UdpProbe) -> None:
        """Drop a probe the planner is done with, but keep the newest one whose
        push was lost: the after-expiry test speaks on it."""
        session = self._session
        assert session is not None
        test = next((t for t in reversed(self.planners[state].evidence.tests) if t.conn == probe.tag[1]), None)
        lost = test is not None and test.outcome is Outcome.FAILED and test.source is Source.DEADLINE
        if not lost or probe.sock is None:
            session.drop(probe)
            return
        if self._lost is not None:
            session.drop(self._lost)
        self._lost = probe

    async def _bind(self, state: str, conn: int) -> None:
        """Open a probe, bring it into its state, then hand it to its planner, idle."""
        session = self._session
        assert session is not None
        planner = self.planners[state]
        try:
            probe = await session.open((state, conn))
        except TargetError as exc:
            self._open_failed(state, conn, exc)
            return
        placeholder = self._probes.get((state, conn))
        if placeholder is None:  # closed meanwhile (the planner finished)
            session.drop(probe)
            return
        probe.task = placeholder.task
        self._probes[(state, conn)] = probe
        if probe.sock is not None:
            # The family the name resolved to, not a guess from its spelling:
            # a host name with only an AAAA record is IPv6 too.
            self.ip_version = 6 if probe.sock.local_address.startswith("[") else 4
        since = await session.bind(probe, state)
        if since is None:
            self._open_failed(state, conn, TargetError(f"no answer from {self.options.target}"))
            return
        self._open_failures = 0
        self._post(state, partial(planner.opened, conn, self.clock(), since=since))

    def _open_failed(self, state: str, conn: int, exc: TargetError) -> None:
        planner = self.planners[state]
        self._open_failures += 1
        if exc.code == "busy" and planner.config.max_conns > MIN_POOL:
            # The server's per-session or per-address limit: fewer probes, slower.
            planner.config = replace(planner.config, max_conns=max(MIN_POOL, len(planner.conns) - 1))
        if self._open_failures >= MAX_OPEN_FAILURES * len(self.planners):
            self._fail(exc)
            return
        self._post(state, partial(planner.open_failed, conn, self.clock()))

    def _push_arrived(self, probe: UdpProbe, at: float) -> None:
        if probe is self._refresh_probe:
            if self._refresh is not None:
                self._refresh.arrived(at)
                self._refresh_changed.set()
            return
        if probe.arrived or not isinstance(probe.tag, tuple):
            return  # a second copy of the same push
        probe.arrived = True
        state, conn = probe.tag
        planner = self.planners[state]
        self._post(state, partial(planner.arrived, conn, probe.server_idle, at))

    def _pushed(self, ident: str, msg: dict[str, Any]) -> None:
        if ident.startswith("r.") and self._refresh is not None:
            if msg.get("sent") and ident[2:].isdigit():
                self._refresh.confirmed(int(ident[2:]))
                self._refresh_changed.set()
            return
        parts = ident.split(".")
        if len(parts) != 3 or parts[0] != "p" or parts[1] not in self.planners or not parts[2].isdigit():
            return
        state, conn = parts[1], int(parts[2])
        probe = self._probes.get((state, conn))
        planner = self.planners[state]
        idle = json_number(msg.get("idle_s"))
        if msg.get("sent") and idle is not None:
            if probe is not None:
                probe.server_idle = idle
            self._post(state, partial(planner.pushed, conn, idle, self.clock()))
        else:
            # Our own problem (the probe's budget, a server that forgot it),
            # not the path's: the test is dropped, not counted.
            self._post(state, partial(planner.open_failed, conn, self.clock()))

    # Inbound refresh ---------------------------------------------------------

    def _longest(self, attr: str) -> float | None:
        values = [getattr(p.bracket(), attr) for p in self.planners.values()]
        known = [v for v in values if v is not None]
        return max(known) if known else None

    async def _refresh_test(self, session: UdpSession) -> None:
        """One probe, replied and validated, then silent while the server beats."""
        try:
            probe = await session.open("refresh")
        except TargetError:
            return
        self._refresh_probe = probe
        # The second echo carries the first reply's cookie: the server may
        # then send this address more than 3x what it received (the beats).
        if not await session.exchange(probe, Kind.ECHO) or not await session.exchange(probe, Kind.ECHO):
            return
        assert probe.sock is not None and probe.sock.sent_at is not None
        self._refresh = RefreshEvidence(probe.sock.sent_at)
        beat = 0
        while True:
            await asyncio.sleep(beat_interval(self._longest("longest_survived")))
            beat += 1
            self._refresh.ask(beat, self.clock())
            session.push(probe, f"r.{beat}", copies=1)

    def _refresh_verdict(self) -> bool | None:
        if self._refresh is None:
            return None
        return self._refresh.verdict(self.clock(), self._longest("upper"), self.grace_s)

    async def _after_expiry(self, session: UdpSession) -> None:
        """Send once on a binding the path forgot (its push was lost): does the
        server see the datagram, and from the same public address?"""
        probe = self._lost
        if probe is None or probe.sock is None:
            return
        before = probe.observed
        sent = self.clock()
        seen = await session.exchange(probe, Kind.HELLO)
        self.after_expiry = udp_after_expiry(seen, before, probe.observed, self.clock() - sent)
        self._emit("after_expiry", **self.after_expiry)

    async def _await_refresh_verdict(self) -> None:
        """Wait, bounded, until the refresh probe has been silent long enough."""
        upper = self._longest("upper")
        if self._refresh is None or upper is None:
            return
        grace = self.grace_s
        until = self._refresh.decided_by(upper, grace, beat_interval(self._longest("longest_survived")))
        while (verdict := self._refresh_verdict()) is None:
            left = until - self.clock()
            if left <= 0:
                break
            self._refresh_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, grace)):
                    await self._refresh_changed.wait()
        self.inbound_refresh = verdict
        self._emit("inbound_refresh", value=verdict)
