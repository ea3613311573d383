"""Drive the sans-I/O planner with real connections to a natprobe server."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from probe.core.evidence import FailureMode, IdleTest, Outcome, Source
from probe.core.planner import Action, Close, Finish, Open, Planner, PlannerConfig, Probe
from probe.core.progress import Progress, state_progress
from probe.core.protocol import json_number
from probe.core.results import DiscoverResult
from probe.core.survey import Claim, PoolShare, ShareKey
from probe.core.targets import Scheme
from probe.errors import TargetError
from probe.net.client import ConnectionEnded, MessageConnection, Welcome, nat_facts
from probe.net.dial import Reaching, dial
from probe.run.after_expiry import MAX_WAIT_S, lost_push_wait, speak_after_expiry
from probe.run.control import RunEvents, keep_busy, measure_rtt, stop, timed

Observer = Callable[[dict[str, Any]], None]
#: An event for the planner: called with the time it happened.
_Event = Callable[[], list[Action]]

#: How long the server waits before reporting an unacknowledged push, when
#: its welcome does not say.
DEFAULT_PUSH_REPORT_S = 1.0
#: Opening this many test connections in a row failing means the server or
#: path refuses us; stop instead of retrying forever.
MAX_OPEN_FAILURES = 5
#: The fewest test connections the planner works with.
MIN_POOL = 2


@dataclass(frozen=True)
class DiscoverOptions(Reaching):
    planner: PlannerConfig
    #: None: derive from the measured round-trip time.
    grace_s: float | None = None
    #: Speak once on forgotten connections after the bracket is settled.
    after_expiry: bool = True


class DiscoverRun(RunEvents[_Event]):
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
        self._claim: Claim | None = None
        self.planner = Planner(options.planner)
        #: When the bracket was settled (the planner finished).
        self.settled: float | None = None
        self.nat: dict[str, Any] = {}
        self.server_name: str | None = None
        self.rtt_s: float | None = None
        self._conns: dict[int, MessageConnection] = {}
        self._sessions: dict[int, str] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._open_failures = 0
        self._backstop_s = options.planner.max_idle_s
        self._reported = 0
        self._control: MessageConnection | None = None
        #: The control session's id: test connections join its run.
        self._run: str | None = None
        self._observed: dict[int, str] = {}
        self._session_cid: dict[str, int] = {}
        #: Server reports of pushes its TCP never saw acknowledged, by conn.
        self._unacked: dict[int, dict[str, Any]] = {}
        self._push_report_s = DEFAULT_PUSH_REPORT_S
        self._report_arrived = asyncio.Event()
        #: A connection idle since the start on which nobody speaks, kept
        #: aside for the after-expiry test: (conn, idle since, observed).
        self._quiet: tuple[MessageConnection, float, str] | None = None
        #: The latest connection whose push was lost, kept open: (cid, conn).
        self._lost: tuple[int, MessageConnection] | None = None
        self.after_expiry: dict[str, Any] | None = None
        self.ip_version = 4
        #: Test connections the planner may keep open: what was asked, less
        #: what the server's per-address limit leaves (welcome's ``limits``).
        self.pool = options.planner.max_conns
        self.server_limits: dict[str, Any] | None = None
        self.limited = False

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
            quiet = self._size_pool(welcome.raw.get("limits"), control.where, self._share_key(welcome))
            self.rtt_s = await measure_rtt(control, self.clock, endpoint.timeout_s)
            if quiet:
                await self._open_quiet()
            self._configure_timing(self.rtt_s)
            self._emit("start", target=str(target), rtt_s=round(self.rtt_s, 5), nat=self.nat)
            helpers.append(asyncio.create_task(self._control_reader(control)))
            helpers.append(asyncio.create_task(keep_busy(control, self._fail)))
            with self.signals():
                await self._loop(control)
                if self.options.after_expiry and not self.interrupted:
                    await self._after_expiry()
        finally:
            for task in helpers:
                task.cancel()
            await self._close_all()
            control.abort()
            await stop(helpers)
            if self._share is not None and self._claim is not None:
                self._share.release(self._claim)
        result = self.result()
        self._emit("result", result=result.to_json())
        return result

    def progress(self, now: float) -> Progress:
        """What the live view shows at ``now``."""
        started = self.started if self.started is not None else now
        view = state_progress(self.planner, started, now)
        return Progress(str(self.options.target), now - started, (view,))

    def result(self) -> DiscoverResult:
        now = self.clock()
        started = self.started if self.started is not None else now
        planner = self.planner
        return DiscoverResult(
            target=str(self.options.target),
            transport=self.options.target.transport,
            bracket=planner.bracket(),
            tests=list(planner.evidence.tests),
            wall_s=(self.settled if self.settled is not None else now) - started,
            total_s=now - started,
            nat=self.nat or nat_facts("", ""),
            max_idle_s=self.options.planner.max_idle_s,
            reason="interrupted" if self.interrupted else (planner.finished or "incomplete"),
            interrupted=self.interrupted,
            server=self.server_name,
            connections={
                "max_open": planner.stats.max_open + 1,
                "opened": planner.stats.opened + 1,
                "asked": self.options.planner.max_conns,
                "pool": self.pool,
                "limited_by_server": self.limited,
                "server_limits": self.server_limits,
            },
            target_width_s=planner.target_width(planner.bracket()),
            grace_s=planner.config.grace_s,
            rtt_s=self.rtt_s,
            after_expiry=self.after_expiry,
            server_view={"unacknowledged_pushes": len(self._unacked)},
            ip_version=self.ip_version,
            tls=self.options.target.scheme is Scheme.WSS,
            proxy=self.options.proxy,
        )

    # Timing ----------------------------------------------------------------

    def _configure_timing(self, rtt: float) -> None:
        self.planner = Planner(timed(self.options.planner, rtt, self.options.grace_s, self.pool))

    def _share_key(self, welcome: Welcome) -> ShareKey:
        # Which server process: its own name for itself, else the address we
        # dialled; whose limit: our address as that server sees it.
        instance = welcome.raw.get("instance")
        server = instance if isinstance(instance, str) and instance else self.options.endpoint.where
        return (server, welcome.observed.rsplit(":", 1)[0])

    def _size_pool(self, limits: Any, where: str, key: ShareKey | None = None) -> bool:
        """Fit the pool to what the server's per-address limit leaves, so that
        a second run from the same address (a colleague behind the same NAT,
        TCP and WebSocket measured at once) is slower, not refused.
        Return whether a quiet connection fits too."""
        want_quiet = self.options.after_expiry
        if not isinstance(limits, dict):
            return want_quiet
        self.server_limits = {k: v for k, v in limits.items() if json_number(v) is not None}
        free = json_number(limits.get("per_ip_free"))
        total = json_number(limits.get("sessions_free"))
        left = min(x for x in (free, total, float("inf")) if x is not None)
        if self._share is not None and key is not None and left != float("inf"):
            # Beside other runs of a survey: what they planned and have not
            # opened yet is not in the server's count, but will be.
            want = self.pool + (1 if want_quiet else 0)
            left, self._claim = self._share.size(key, int(left), want, self._open_now)
        quiet = want_quiet and left - 1 >= MIN_POOL
        room = int(left) - (1 if quiet else 0)
        if room < MIN_POOL:
            raise TargetError(
                f"{where} allows only {int(left)} more connection(s) from this address and discovery needs "
                f"{MIN_POOL}; try again when other runs from here have finished",
                code="busy",
            )
        if room < self.pool:
            self.pool = room
            self.limited = True
        return quiet

    def _open_now(self) -> int:
        """Connections of this run the server counts now, control excluded."""
        # A lost-push connection kept aside keeps its session in _sessions.
        return len(self._sessions) + (self._quiet is not None)

    # Event plumbing ----------------------------------------------------------

    def _post(self, event: _Event) -> None:
        self._events.put_nowait(event)

    async def _loop(self, control: MessageConnection) -> None:
        planner = self.planner
        self.started = self.clock()
        actions = planner.start(self.started)
        while True:
            self._apply(actions, control)
            if planner.finished is not None:
                self.settled = self.clock()
                return
            wake = planner.next_wakeup()
            event: _Event | None
            try:
                if wake is None:
                    event = await self._events.get()
                else:
                    async with asyncio.timeout(max(0.0, wake - self.clock())):
                        event = await self._events.get()
            except TimeoutError:
                actions = planner.tick(self.clock())
                continue
            if self._fatal is not None:
                raise self._fatal
            if event is None:
                if self.interrupted:
                    return
                actions = []
                continue
            actions = event()

    def _apply(self, actions: list[Action], control: MessageConnection) -> None:
        for action in actions:
            if isinstance(action, Open):
                self._tasks[action.conn] = asyncio.create_task(self._conn_task(action.conn))
            elif isinstance(action, Probe):
                session = self._sessions.get(action.conn)
                if session is not None:
                    control.send({"op": "push_now", "id": f"p{action.conn}", "session": session})
                    self._emit(
                        "probe", conn=action.conn, age_s=round(self.planner.conns[action.conn].age(self.clock()), 3)
                    )
            elif isinstance(action, Close):
                if self._lost_push(action.conn):
                    self._keep_lost(action.conn)
                else:
                    self._close(action.conn)
            elif isinstance(action, Finish):
                self._emit("finish", reason=action.reason)
        for test in self.planner.evidence.tests[self._reported :]:
            self._emit("test", **test.to_json())
        self._reported = len(self.planner.evidence.tests)

    # Connections -------------------------------------------------------------

    async def _conn_task(self, cid: int) -> None:
        planner = self.planner
        try:
            conn = await dial(self.options.endpoint)
        except TargetError as exc:
            self._open_failed(cid, exc)
            return
        self._conns[cid] = conn
        try:
            welcome = await conn.hello(self.options.endpoint.token, self.options.endpoint.timeout_s, run=self._run)
        except TargetError as exc:
            self._conns.pop(cid, None)
            conn.abort()
            self._open_failed(cid, exc)
            return
        welcomed = self.clock()
        self._open_failures = 0
        self._sessions[cid] = welcome.session
        self._session_cid[welcome.session] = cid
        self._observed[cid] = welcome.observed
        rounds = 0
        conn.send({"op": "push_after", "id": f"b{cid}.{rounds}", "idle_s": self._backstop_s})
        self._post(partial(planner.opened, cid, self.clock(), welcomed))
        while True:
            try:
                msg = await conn.recv()
            except ConnectionEnded as exc:
                self._post(partial(planner.ended, cid, exc.mode, self.clock()))
                return
            except TargetError as exc:
                self._fail(exc)
                return
            if msg.get("op") != "push":
                continue
            rounds += 1
            # Answer at once: the ack starts the next idle period, so the
            # connection can be tested again.
            conn.send(
                {"op": "ack", "id": str(msg.get("id", ""))[:128]},
                {"op": "push_after", "id": f"b{cid}.{rounds}", "idle_s": self._backstop_s},
            )
            self._post(partial(planner.arrived, cid, json_number(msg.get("idle_s")), self.clock()))

    def _open_failed(self, cid: int, exc: TargetError) -> None:
        if exc.code == "busy" and self.planner.config.max_conns > MIN_POOL:
            # Another run from this address took what welcome said was free:
            # shrink the pool and go on, slower, rather than fail.
            smaller = max(MIN_POOL, min(self.planner.config.max_conns, len(self.planner.conns)) - 1)
            self.planner.config = replace(self.planner.config, max_conns=smaller)
            self.pool = smaller
            self.limited = True
            self._post(partial(self.planner.open_failed, cid, self.clock()))
            return
        self._open_failures += 1
        if self._open_failures >= MAX_OPEN_FAILURES:
            self._fail(exc)
            return
        self._post(partial(self.planner.open_failed, cid, self.clock()))

    async def _control_reader(self, control: MessageConnection) -> None:
        planner = self.planner
        try:
            while True:
                msg = await control.recv()
                if msg.get("op") == "push_unacked":
                    self._note_unacked(msg)
                    continue
                if msg.get("op") != "pushed":
                    continue
                ident = str(msg.get("id", ""))
                if not ident.startswith("p") or not ident[1:].isdigit():
                    continue
                cid = int(ident[1:])
                idle = json_number(msg.get("idle_s"))
                if msg.get("sent") and idle is not None:
                    self._post(partial(planner.pushed, cid, idle, self.clock()))
                else:
                    # The server lost that session (a middlebox reset its
                    # side, say) while this side heard nothing: from here the
                    # flow died silently. Close our end too.
                    self._close(cid)
                    self._post(partial(planner.ended, cid, FailureMode.SILENT_DROP, self.clock()))
        except ConnectionEnded as exc:
            self._fail(TargetError(f"lost the control connection to {control.where} ({exc})"))
        except TargetError as exc:
            self._fail(exc)

    def _close(self, cid: int, release: bool = True) -> None:
        task = self._tasks.pop(cid, None)
        if task is not None:
            task.cancel()
        conn = self._conns.pop(cid, None)
        if conn is not None:
            conn.abort()
        if release:
            self._release(cid)
        else:
            self._sessions.pop(cid, None)

    async def _close_all(self) -> None:
        tasks = list(self._tasks.values())
        for cid in list(self._tasks):
            # Closing the control connection ends the run: the server frees
            # every test connection of it then.
            self._close(cid, release=False)
        for conn in self._conns.values():
            conn.abort()
        self._conns.clear()
        if self._quiet is not None:
            self._quiet[0].abort()
            self._quiet = None
        if self._lost is not None:
            self._lost[1].abort()
            self._lost = None
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # After expiry --------------------------------------------------------------

    def _note_unacked(self, msg: dict[str, Any]) -> None:
        cid = self._session_cid.get(str(msg.get("session", "")))
        if cid is not None:
            self._unacked[cid] = msg
            self._report_arrived.set()

    def _last_test(self, cid: int) -> IdleTest | None:
        return next((t for t in reversed(self.planner.evidence.tests) if t.conn == cid), None)

    def _lost_push(self, cid: int) -> bool:
        """Whether ``cid`` ends with a push declared lost and never late."""
        test = self._last_test(cid)
        return test is not None and test.outcome is Outcome.FAILED and test.source is Source.DEADLINE

    def _keep_lost(self, cid: int) -> None:
        """Keep the newest lost-push connection open for the after-expiry test;
        the one it replaces is closed."""
        if not self.options.after_expiry or cid not in self._conns:
            self._close(cid)
            return
        if self._lost is not None:
            old = self._lost[0]
            self._lost[1].abort()
            self._lost = None
            self._release(old)
        task = self._tasks.pop(cid, None)
        if task is not None:
            # Its reader stops; what arrives from now on is read by the test.
            task.cancel()
        self._lost = (cid, self._conns.pop(cid))

    def _release(self, cid: int) -> None:
        """Forget the connection's session and ask the server to free it now:
        our own RST may die in the black hole that killed the flow."""
        session = self._sessions.pop(cid, None)
        if session is not None and self._control is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self._control.send({"op": "release", "session": session})

    async def _open_quiet(self) -> None:
        try:
            conn = await dial(self.options.endpoint)
        except TargetError:
            return
        try:
            welcome = await conn.hello(self.options.endpoint.token, self.options.endpoint.timeout_s, run=self._run)
        except TargetError:
            conn.abort()
            return
        self._quiet = (conn, self.clock(), welcome.observed)

    async def _after_expiry(self) -> None:
        """Once the bracket is settled, speak once on each kind of forgotten
        connection; both tests run at once, in seconds."""
        bracket = self.planner.bracket()
        if bracket.upper is None:
            return
        grace = self.planner.config.grace_s
        jobs: dict[str, asyncio.Task[Any]] = {}
        if self._quiet is not None:
            conn, since, observed = self._quiet
            # Idle longer than the bracket, or the test proves nothing.
            short = bracket.upper + grace - (self.clock() - since)
            if short <= MAX_WAIT_S:
                jobs["quiet"] = asyncio.create_task(self._quiet_test(conn, max(0.0, short), observed, grace))
        if self._lost is not None:
            cid, conn = self._lost
            test = self._last_test(cid)
            asked = test.asked_at if test is not None and test.asked_at is not None else 0.0
            since_push = self._elapsed() - asked
            wait = lost_push_wait(grace, since_push)
            jobs["lost"] = asyncio.create_task(speak_after_expiry(conn, wait, self._observed.get(cid), self.clock))
        if not jobs:
            return
        await asyncio.gather(*jobs.values(), return_exceptions=True)
        await self._await_reports()
        results = {name: job.result() for name, job in jobs.items() if job.exception() is None}
        quiet, lost = results.get("quiet"), results.get("lost")
        data: dict[str, Any] = (
            quiet.to_json()
            if quiet is not None
            else {"outcome": None, "port_changed": None, "waited_s": None, "detail": "not measured"}
        )
        data["after_lost_push"] = lost.to_json(lost_push=True) if lost is not None else None
        self.after_expiry = data
        self._emit("after_expiry", **data)

    async def _quiet_test(self, conn: MessageConnection, short: float, observed: str, grace: float) -> Any:
        if short > 0:
            await asyncio.sleep(short)
        return await speak_after_expiry(conn, max(2 * grace, 1.0), observed, self.clock)

    async def _await_reports(self) -> None:
        """Give the server's reports on the last lost pushes time to arrive."""
        lost = {
            t.conn: t
            for t in self.planner.evidence.tests
            if t.source is Source.DEADLINE and t.outcome is Outcome.FAILED
        }
        if not lost:
            return
        last_asked = max((t.asked_at or 0.0) for t in lost.values())
        until = last_asked + self._push_report_s + self.planner.config.grace_s
        while not all(cid in self._unacked for cid in lost):
            left = until - self._elapsed()
            if left <= 0:
                return
            self._report_arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._report_arrived.wait()
