"""UDP discovery: the Discovery's commands on UDP probes (the loop is run/driver.py's).

A TCP (or WebSocket) control connection carries every request; each probe is
its own UDP socket, so its own NAT binding, used for one test only. Three
planners run at once in one Discovery, one per flow state (docs/discovery.md):

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
from dataclasses import dataclass
from functools import partial
from typing import Any

from probe.core.after_expiry import AfterExpiry, udp_after_expiry
from probe.core.commands import Command, Key, Recorded, RequestPush, RunFacts
from probe.core.designs import Design, DesignOutcome, DesignTrials, udp_designs
from probe.core.discovery import UDP_STATES, Discovery
from probe.core.events import Event
from probe.core.model import to_json
from probe.core.nat import UNKNOWN
from probe.core.planner import PlannerConfig
from probe.core.results import DiscoverResult
from probe.core.server_messages import Pushed, Reply
from probe.core.targets import Target
from probe.core.udp_refresh import RefreshEvidence, beat_interval
from probe.core.udp_wire import Kind
from probe.errors import TargetError
from probe.net.dial import Endpoint, dial
from probe.run.control import keep_busy, measure_rtt, stop
from probe.run.driver import Driver
from probe.run.udp_designs import UdpDesignProbes
from probe.run.udp_session import STREAM_GAP_S, UdpProbe, UdpSession, require_udp

Observer = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class UdpDiscoverOptions:
    target: Target
    #: The control connection's server, over TCP or WebSocket.
    control: Endpoint
    planner: PlannerConfig
    grace_s: float | None = None
    states: tuple[str, ...] = UDP_STATES
    inbound_refresh: bool = True
    #: One probe per UDP keepalive design, to see which keep the binding.
    designs: bool = True


class UdpDiscoverRun(Driver):
    """One UDP discovery. ``result()`` gives what is known, at any moment."""

    def __init__(
        self, options: UdpDiscoverOptions, clock: Callable[[], float] = time.monotonic, observer: Observer | None = None
    ) -> None:
        super().__init__(clock, observer)
        self.options = options
        self.discovery = Discovery.for_udp(options.planner, options.states, STREAM_GAP_S)
        self.server_name: str | None = None
        self.rtt_s: float | None = None
        self.ip_version = 4
        self.inbound_refresh: bool | None = None
        self.after_expiry: AfterExpiry | None = None
        self._session: UdpSession | None = None
        self._probes: dict[Key, UdpProbe] = {}
        self._refresh: RefreshEvidence | None = None
        self._refresh_probe: UdpProbe | None = None
        self._refresh_changed = asyncio.Event()
        #: The newest probe whose push was lost, kept for the after-expiry test.
        self._lost: UdpProbe | None = None
        #: Each design probe's story (None: designs not tried), and the probes.
        self.trials = DesignTrials.of(udp_designs()) if options.designs else None
        self._designs: UdpDesignProbes | None = None

    # Public --------------------------------------------------------------

    async def run(self) -> DiscoverResult:
        opts = self.options
        control = await dial(opts.control)
        helpers: list[asyncio.Task[Any]] = []
        session = UdpSession(control, opts.target, self.clock, opts.control.timeout_s, self._fail)
        session.on_push = self._push_arrived
        try:
            welcome = await control.hello(opts.control.token, opts.control.timeout_s)
            require_udp(welcome.raw, control.where, opts.target)
            self._session = session
            self.server_name = welcome.server
            self.rtt_s = await measure_rtt(control, self.clock, opts.control.timeout_s)
            self.discovery.configure(self.rtt_s, opts.grace_s)
            session.wait_s = self.discovery.grace_s
            helpers.append(asyncio.create_task(session.reader()))
            helpers.append(asyncio.create_task(keep_busy(control, self._fail)))
            self._emit(
                Event.START, target=str(opts.target), control=str(opts.control.target), rtt_s=round(self.rtt_s, 5)
            )
            if opts.inbound_refresh:
                helpers.append(asyncio.create_task(self._refresh_test(session)))
            if self.trials is not None:
                self._designs = UdpDesignProbes(session, self.trials, self.clock)
                helpers.append(asyncio.create_task(self._designs.open_all()))
            with self.signals():
                await self._loop()
                if not self.interrupted:
                    await asyncio.gather(
                        self._await_refresh_verdict(), self._after_expiry(session), self._push_designs()
                    )
        finally:
            for task in helpers:
                task.cancel()
            if self._designs is not None:
                await self._designs.close()
            for probe in self._probes.values():
                if probe.task is not None:
                    probe.task.cancel()
            session.close_all()
            control.abort()
            await stop(helpers)
        return self._done()

    def result(self) -> DiscoverResult:
        session = self._session
        facts = RunFacts(
            target=str(self.options.target),
            transport="udp",
            nat=(session.nat if session is not None else None) or UNKNOWN,
            server=self.server_name,
            rtt_s=self.rtt_s,
            ip_version=self.ip_version,
            control=str(self.options.control.target),
            interrupted=self.interrupted,
            after_expiry=self.after_expiry,
            inbound_refresh=self.inbound_refresh,
            # The control connection and the refresh probe.
            side_connections=2,
            # Every probe the session opened, the design probes included.
            opened=(session.opened if session is not None else 0) + 1,
            design_connections=self._design_probes,
            designs=self._design_outcomes(),
        )
        return self.discovery.result(self.clock(), facts)

    @property
    def _design_probes(self) -> int:
        return 0 if self._designs is None else self._designs.held

    def _design_outcomes(self) -> dict[Design, DesignOutcome] | None:
        """Judged against the longest timer of any flow state: a design that
        kept its binding past it kept it whatever state it counts as."""
        if self.trials is None:
            return None
        discovery = self.discovery
        upper, lower = discovery.longest("upper"), discovery.longest("longest_survived")
        return self.trials.outcomes(upper, self.interrupted, lower)

    async def _push_designs(self) -> None:
        upper = self.discovery.longest("upper")
        if self._designs is not None and upper is not None:
            await self._designs.push_all(self._designs.push, upper, max(self.discovery.grace_s, 1.0))

    def _apply(self, commands: list[Command]) -> None:
        super()._apply(commands)
        # Only a new test moves the bracket: not worked out again on every event.
        if self.trials is not None and any(isinstance(c, Recorded) for c in commands):
            upper = self.discovery.bracket().upper
            if upper is not None:
                self.trials.retime(upper)

    @property
    def target_text(self) -> str:
        return str(self.options.target)

    # The transport's verbs -------------------------------------------------------

    def _open(self, key: Key) -> None:
        self._probes[key] = UdpProbe(key, task=asyncio.create_task(self._bind(key)))

    def _push(self, command: RequestPush) -> bool:
        probe = self._probes.get(command.key)
        if probe is None or self._session is None:
            return False
        self._session.push(probe).add_done_callback(partial(self._pushed, command.key))
        return True

    def _release(self, key: Key, session: str | None) -> None:
        probe = self._probes.pop(key, None)
        if probe is self._lost:
            self._lost = None
        if probe is not None and self._session is not None:
            self._session.drop(probe)

    def _keep(self, key: Key) -> bool:
        probe = self._probes.get(key)
        if probe is None or probe.sock is None:
            return False
        if self._lost is not None and self._session is not None:
            self._session.drop(self._lost)
        self._lost = probe
        return True

    # Probes ------------------------------------------------------------------

    async def _bind(self, key: Key) -> None:
        """Open a probe, bring it into its state, then hand it to the Discovery, idle."""
        session = self._session
        assert session is not None
        try:
            probe = await session.open(key)
        except TargetError as exc:
            self._open_failed(key, exc)
            return
        placeholder = self._probes.get(key)
        if placeholder is None:  # closed meanwhile (the planner finished)
            session.drop(probe)
            return
        probe.task = placeholder.task
        self._probes[key] = probe
        if probe.sock is not None:
            # The family the name resolved to, not a guess from its spelling:
            # a host name with only an AAAA record is IPv6 too.
            self.ip_version = 6 if probe.sock.local_address.startswith("[") else 4
        since = await session.bind(probe, key[0])
        if since is None:
            self._open_failed(key, TargetError(f"no answer from {self.options.target}"))
            return
        self._post(partial(self.discovery.opened, key, self.clock(), since=since, session=probe.hexid))

    def _push_arrived(self, probe: UdpProbe, at: float) -> None:
        if probe is self._refresh_probe:
            if self._refresh is not None:
                self._refresh.arrived(at)
                self._refresh_changed.set()
            return
        if isinstance(probe.tag, Design) and self._designs is not None:
            self._designs.arrived(probe, at)
        elif isinstance(probe.tag, tuple):
            self._post(partial(self.discovery.arrived, probe.tag, None, at))

    def _beat_pushed(self, beat: int, reply: asyncio.Future[Reply]) -> None:
        if reply.cancelled() or self._refresh is None:
            return
        msg = reply.result()
        if isinstance(msg, Pushed) and msg.sent:
            self._refresh.confirmed(beat)
            self._refresh_changed.set()

    # Inbound refresh ---------------------------------------------------------

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
            await asyncio.sleep(beat_interval(self.discovery.longest("longest_survived")))
            beat += 1
            self._refresh.ask(beat, self.clock())
            session.push(probe, copies=1).add_done_callback(partial(self._beat_pushed, beat))

    def _refresh_verdict(self) -> bool | None:
        if self._refresh is None:
            return None
        return self._refresh.verdict(self.clock(), self.discovery.longest("upper"), self.discovery.grace_s)

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
        self._emit(Event.AFTER_EXPIRY, **to_json(self.after_expiry))

    async def _await_refresh_verdict(self) -> None:
        """Wait, bounded, until the refresh probe has been silent long enough."""
        discovery = self.discovery
        upper = discovery.longest("upper")
        if self._refresh is None or upper is None:
            return
        grace = discovery.grace_s
        until = self._refresh.decided_by(upper, grace, beat_interval(discovery.longest("longest_survived")))
        while (verdict := self._refresh_verdict()) is None:
            left = until - self.clock()
            if left <= 0:
                break
            self._refresh_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, grace)):
                    await self._refresh_changed.wait()
        self.inbound_refresh = verdict
        self._emit(Event.INBOUND_REFRESH, value=verdict)
