"""TCP and WebSocket discovery: the Discovery's commands on real connections
to a natprobe server (the loop is run/driver.py's)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from probe.core.after_expiry import AfterExpiry, AfterResult, after_expiry
from probe.core.commands import Command, KeepForAfterExpiry, Key, Recorded, RequestPush, RunFacts
from probe.core.designs import Design, DesignOutcome, DesignTrials, designs_for
from probe.core.discovery import TCP, Discovery
from probe.core.events import Event
from probe.core.model import to_json
from probe.core.nat import UNKNOWN, NatFacts, nat_facts
from probe.core.planner import Planner, PlannerConfig
from probe.core.protocol import json_number
from probe.core.results import DiscoverResult
from probe.core.server_messages import Push, PushUnacked, ServerMessage, read_server
from probe.core.survey import PoolShare, ShareKey
from probe.core.targets import Scheme
from probe.errors import TargetError
from probe.net.client import ConnectionEnded, MessageConnection, Welcome
from probe.net.dial import Reaching, dial
from probe.run.after_expiry import MAX_WAIT_S, lost_push_wait, speak_after_expiry
from probe.run.control import Dispatcher, keep_busy, measure_rtt, stop
from probe.run.designs import DesignConnections
from probe.run.driver import Driver

Observer = Callable[[dict[str, Any]], None]

#: How long the server waits before reporting an unacknowledged push, when
#: its welcome does not say.
DEFAULT_PUSH_REPORT_S = 1.0


@dataclass(frozen=True)
class DiscoverOptions(Reaching):
    planner: PlannerConfig
    #: None: derive from the measured round-trip time.
    grace_s: float | None = None
    #: Speak once on forgotten connections after the bracket is settled.
    after_expiry: bool = True
    #: Hold one connection per keepalive design and see which keep the flow.
    designs: bool = True
    #: Then hold one per kept design at the recommended interval for 1.5 x upper_s.
    confirm: bool = False


class DiscoverRun(Driver):
    """One discovery. ``result()`` gives what is known, at any moment."""

    def __init__(
        self,
        options: DiscoverOptions,
        clock: Callable[[], float] = time.monotonic,
        observer: Observer | None = None,
        share: PoolShare | None = None,
    ) -> None:
        super().__init__(clock, observer)
        self.options = options
        #: A survey's ledger: runs beside this one on the same server.
        self._share = share
        websocket = options.target.scheme is not Scheme.TCP
        designs = designs_for(websocket) if options.designs else ()
        self.discovery = Discovery.for_tcp(options.planner, after_expiry=options.after_expiry, designs=len(designs))
        #: Each design connection's story (None: designs not tried).
        self.trials = DesignTrials.of(designs) if designs else None
        self._designs: DesignConnections | None = None
        #: ``--confirm``'s verdicts, per kept design, and its step while it runs.
        self.confirmed: dict[Design, bool | None] = {}
        self._confirming: asyncio.Task[None] | None = None
        self.nat: NatFacts | None = None
        self.server_name: str | None = None
        self.rtt_s: float | None = None
        self.ip_version = 4
        self.after_expiry: AfterExpiry | None = None
        self._conns: dict[Key, MessageConnection] = {}
        self._tasks: dict[Key, asyncio.Task[None]] = {}
        self._backstop_s = options.planner.max_idle_s
        self._control: MessageConnection | None = None
        self._dispatch: Dispatcher | None = None
        #: The control session's id: test connections join its run.
        self._run: str | None = None
        self._push_report_s = DEFAULT_PUSH_REPORT_S
        self._report_arrived = asyncio.Event()
        #: The connection kept aside, idle since the start, for the after-expiry test.
        self._quiet: MessageConnection | None = None
        #: The latest connection whose push was lost, kept open.
        self._lost: tuple[Key, MessageConnection] | None = None
        #: The after-expiry tests under way ("quiet", "lost").
        self._jobs: dict[str, asyncio.Task[AfterResult]] = {}

    @property
    def planner(self) -> Planner:
        """The one planner (tests look at it)."""
        return self.discovery.planners[TCP]

    # Public --------------------------------------------------------------

    async def run(self) -> DiscoverResult:
        endpoint = self.options.endpoint
        target = endpoint.target
        control = await dial(endpoint)
        helpers: list[asyncio.Task[Any]] = []
        try:
            welcome = await control.hello(endpoint.token, endpoint.timeout_s)
            self._control = control
            self._run = welcome.session
            self.ip_version = 6 if welcome.local.startswith("[") else 4
            self.server_name = welcome.server
            self.nat = nat_facts(welcome.local, welcome.observed)
            server_max = json_number(welcome.raw.get("max_idle_s"))
            if server_max is not None:
                self._backstop_s = min(self._backstop_s, server_max)
            report_s = json_number(welcome.raw.get("push_report_s"))
            if report_s is not None:
                self._push_report_s = min(report_s, MAX_WAIT_S)
            quiet = self.discovery.size_pool(
                welcome.raw.get("limits"), control.where, self._share, self._share_key(welcome)
            )
            self.rtt_s = await measure_rtt(control, self.clock, endpoint.timeout_s)
            if quiet:
                await self._open_quiet()
            self._open_designs(helpers, welcome)
            self.discovery.configure(self.rtt_s, self.options.grace_s)
            self._emit(Event.START, target=str(target), rtt_s=round(self.rtt_s, 5), nat=to_json(self.nat))
            self._dispatch = Dispatcher(control, self._fail)
            self._dispatch.on_news = self._news
            helpers.append(asyncio.create_task(self._dispatch.read()))
            helpers.append(asyncio.create_task(keep_busy(control, self._fail)))
            with self.signals():
                await self._loop()
                if not self.interrupted:
                    await self._after_expiry()
                if self.options.confirm and not self.interrupted:
                    self._confirming = asyncio.create_task(self._confirm())
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._confirming
        finally:
            for task in helpers:
                task.cancel()
            await stop(list(self._jobs.values()))
            if self._designs is not None:
                await self._designs.close()
            await self._close_all()
            control.abort()
            await stop(helpers)
            self.discovery.release_share()
        return self._done()

    def result(self) -> DiscoverResult:
        target = self.options.target
        facts = RunFacts(
            target=str(target),
            transport=target.transport,
            nat=self.nat or UNKNOWN,
            server=self.server_name,
            rtt_s=self.rtt_s,
            ip_version=self.ip_version,
            tls=target.scheme is Scheme.WSS,
            proxy=self.options.proxy,
            interrupted=self.interrupted,
            after_expiry=self.after_expiry,
            design_connections=0 if self._designs is None else self._designs.held,
            designs=self._design_outcomes(),
        )
        return self.discovery.result(self.clock(), facts)

    def _design_outcomes(self) -> dict[Design, DesignOutcome] | None:
        if self.trials is None:
            return None
        bracket = self.discovery.bracket()
        outcomes = self.trials.outcomes(bracket.upper, self.interrupted, bracket.lower)
        if not self.options.confirm:
            return outcomes
        # Only a design that kept the flow is confirmed; the others say nothing.
        return {d: replace(o, confirmed=self.confirmed.get(d)) if o.kept else o for d, o in outcomes.items()}

    def interrupt(self) -> None:
        super().interrupt()
        if self._confirming is not None:
            self._confirming.cancel()

    async def _confirm(self) -> None:
        """``--confirm``: one connection per kept design at the recommended
        interval, held 1.5 x upper_s and then pushed on."""
        outcomes = self._design_outcomes() or {}
        advice = self.result().advice
        kept = tuple(d for d, o in outcomes.items() if o.kept)
        if not kept or advice is None or self._dispatch is None:
            return
        conns = DesignConnections(
            self.options.endpoint, DesignTrials.of(kept, every_s=advice.interval_s), self.clock, self._run
        )
        await conns.confirm(self._dispatch, self.discovery.bracket(), max(self.discovery.grace_s, 1.0), self.confirmed)

    def _open_designs(self, helpers: list[asyncio.Task[Any]], welcome: Welcome) -> None:
        """Open the design connections beside the pool, as many as the server's
        limits leave room for, of the designs the server knows."""
        trials = self.trials
        if trials is None:
            return
        trials.server_knows(welcome.raw.get("features"), welcome.server)
        for design in list(trials.trials)[self.discovery.design_room :]:
            trials.open_failed(design, "the server's connection limit for this address left no room")
        self._designs = DesignConnections(self.options.endpoint, trials, self.clock, self._run)
        helpers.append(asyncio.create_task(self._designs.open_all()))

    def _share_key(self, welcome: Welcome) -> ShareKey:
        # Which server process: its own name for itself, else the address we
        # dialled; whose limit: our address as that server sees it.
        instance = welcome.raw.get("instance")
        server = instance if isinstance(instance, str) and instance else self.options.endpoint.where
        return (server, welcome.observed.rsplit(":", 1)[0])

    @property
    def target_text(self) -> str:
        return str(self.options.target)

    # The transport's verbs -------------------------------------------------------

    def _open(self, key: Key) -> None:
        self._tasks[key] = asyncio.create_task(self._conn_task(key))

    def _push(self, command: RequestPush) -> bool:
        if command.session is None or self._dispatch is None:
            return False
        reply = self._dispatch.request({"op": "push_now", "session": command.session})
        reply.add_done_callback(partial(self._pushed, command.key))
        return True

    def _news(self, msg: ServerMessage) -> None:
        if isinstance(msg, PushUnacked) and self.discovery.server_report(
            msg.session, self.clock(), msg.retransmit_in_s, msg.rto_s, ended=msg.ended is not None
        ):
            self._report_arrived.set()

    def _release(self, key: Key, session: str | None) -> None:
        self._drop(key)
        if self._lost is not None and self._lost[0] == key:
            self._lost[1].abort()
            self._lost = None
        if session is not None and self._control is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self._control.send({"op": "release", "session": session})

    def _keep(self, key: Key) -> bool:
        conn = self._conns.pop(key, None)
        if conn is None:
            return False
        task = self._tasks.pop(key, None)
        if task is not None:
            # Its reader stops; what arrives from now on is read by the test.
            task.cancel()
        self._lost = (key, conn)
        return True

    # Connections -------------------------------------------------------------

    async def _conn_task(self, key: Key) -> None:
        discovery = self.discovery
        endpoint = self.options.endpoint
        try:
            conn = await dial(endpoint)
        except TargetError as exc:
            self._open_failed(key, exc)
            return
        self._conns[key] = conn
        try:
            welcome = await conn.hello(endpoint.token, endpoint.timeout_s, run=self._run)
        except TargetError as exc:
            self._conns.pop(key, None)
            conn.abort()
            self._open_failed(key, exc)
            return
        welcomed = self.clock()
        cid = key[1]
        rounds = 0
        conn.send({"op": "push_after", "id": f"b{cid}.{rounds}", "idle_s": self._backstop_s})
        self._post(
            partial(discovery.opened, key, self.clock(), welcomed, session=welcome.session, observed=welcome.observed)
        )
        while True:
            try:
                msg = read_server(await conn.recv())
            except ConnectionEnded as exc:
                self._post(partial(discovery.ended, key, exc.mode, self.clock()))
                return
            except TargetError as exc:
                self._fail(exc)
                return
            if not isinstance(msg, Push):
                continue
            rounds += 1
            # Answer at once: the ack starts the next idle period, so the
            # connection can be tested again.
            conn.send(
                {"op": "ack", "id": msg.id},
                {"op": "push_after", "id": f"b{cid}.{rounds}", "idle_s": self._backstop_s},
            )
            self._post(partial(discovery.arrived, key, msg.idle_s, self.clock()))

    def _drop(self, key: Key) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()
        conn = self._conns.pop(key, None)
        if conn is not None:
            conn.abort()

    async def _close_all(self) -> None:
        tasks = list(self._tasks.values())
        # Closing the control connection ends the run: the server frees every
        # test connection of it then, so nothing is released one by one.
        for key in list(self._tasks):
            self._drop(key)
        for conn in [*self._conns.values(), self._quiet, self._lost[1] if self._lost else None]:
            if conn is not None:
                conn.abort()
        self._conns.clear()
        self._quiet = self._lost = None
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # After expiry --------------------------------------------------------------

    async def _open_quiet(self) -> None:
        endpoint = self.options.endpoint
        try:
            conn = await dial(endpoint)
        except TargetError:
            return
        try:
            welcome = await conn.hello(endpoint.token, endpoint.timeout_s, run=self._run)
        except TargetError:
            conn.abort()
            return
        self._quiet = conn
        self.discovery.quiet_opened(self.clock(), welcome.observed)

    def _apply(self, commands: list[Command]) -> None:
        super()._apply(commands)
        # Only a new test moves the bracket: it is not worked out again on
        # every other event. A new test retimes the designs' traffic; it, or
        # a kept connection, lets an after-expiry test start.
        if self.trials is not None and any(isinstance(c, Recorded) for c in commands):
            upper = self.discovery.bracket().upper
            if upper is not None:
                self.trials.retime(upper)
        if self.options.after_expiry and any(isinstance(c, Recorded | KeepForAfterExpiry) for c in commands):
            self._start_after_expiry()

    def _start_after_expiry(self) -> None:
        """Start each after-expiry test as soon as it can prove something,
        beside the refinement rather than after it: the quiet connection's
        once a failure bounds the bracket (it is idle longer than that
        bound), the lost-push one once a connection's push was lost."""
        discovery = self.discovery
        upper = discovery.bracket().upper
        if upper is None:
            return
        grace = discovery.grace_s
        if "quiet" not in self._jobs and self._quiet is not None and discovery.quiet is not None:
            since, observed = discovery.quiet
            # Idle longer than the bracket, or the test proves nothing; the
            # bound only comes down from here.
            short = upper + grace - (self.clock() - since)
            if short <= MAX_WAIT_S:
                job = self._quiet_test(self._quiet, max(0.0, short), observed, grace)
                self._jobs["quiet"] = asyncio.create_task(job)
        if "lost" not in self._jobs and self._lost is not None:
            kept, conn = self._lost
            # From now on the test speaks on this one: no newer one replaces it.
            discovery.kept_fixed = True
            self._jobs["lost"] = asyncio.create_task(self._lost_test(kept, conn, grace))

    async def _lost_test(self, kept: Key, conn: MessageConnection, grace: float) -> AfterResult:
        """Speak on the connection whose push was lost, and listen at most as
        long as the server's TCP may take to send that push again. The
        server's report on the push (due within a fraction of a second, and
        not sent where its TCP saw the push acknowledged) says when it does,
        or that it never will: the test then stops listening once nothing
        more can come."""
        discovery = self.discovery
        test = discovery.last_test(kept)
        asked = test.asked_at if test is not None and test.asked_at is not None else 0.0
        wait = lost_push_wait(grace, self._elapsed() - asked)
        record = discovery.records.get(kept)
        seen = record.observed if record is not None else None
        spoke = self.clock()
        return await speak_after_expiry(
            conn, wait, seen, self.clock, listen=lambda: discovery.lost_push_listen(kept, spoke),
            news=self._report_arrived,
        )  # fmt: skip

    async def _after_expiry(self) -> None:
        """Once the bracket is settled, finish the after-expiry tests (started
        during the refinement, or now) and push on the design connections,
        then wait for the server's reports."""
        upper = self.discovery.bracket().upper
        if upper is None:
            return
        steps: list[Any] = []
        if self._designs is not None and self._dispatch is not None:
            push = self._designs.pusher(self._dispatch)
            steps.append(self._designs.push_all(push, upper, max(self.discovery.grace_s, 1.0)))
        if self.options.after_expiry:
            self._start_after_expiry()
        jobs = dict(self._jobs)
        await asyncio.gather(*steps, *jobs.values(), return_exceptions=True)
        if not jobs:
            return
        await self._await_reports()
        results = {name: job.result() for name, job in jobs.items() if job.exception() is None}
        self.after_expiry = after_expiry(results.get("quiet"), results.get("lost"))
        self._emit(Event.AFTER_EXPIRY, **to_json(self.after_expiry))

    async def _quiet_test(self, conn: MessageConnection, short: float, observed: str, grace: float) -> AfterResult:
        if short > 0:
            await asyncio.sleep(short)
        # An answer takes an RTT; the grace covers one lost packet on the way.
        return await speak_after_expiry(conn, max(grace, 1.0), observed, self.clock)

    async def _await_reports(self) -> None:
        """Give the server's reports on the last lost pushes time to arrive."""
        while (until := self.discovery.reports_due(self._push_report_s)) is not None:
            left = until - self._elapsed()
            if left <= 0:
                return
            self._report_arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._report_arrived.wait()
