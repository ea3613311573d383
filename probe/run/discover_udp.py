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
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from probe.core.planner import Action, Close, Finish, Open, Planner, PlannerConfig, Probe
from probe.core.protocol import json_number
from probe.core.results import DiscoverResult, StateResult, shortest_state
from probe.core.targets import Target
from probe.core.udp_refresh import RefreshEvidence, beat_interval
from probe.core.udp_wire import Datagram, Kind
from probe.errors import TargetError
from probe.net.client import ConnectionEnded, MessageConnection, nat_facts
from probe.net.connect import open_protocol
from probe.net.udp_client import UdpProbeSocket
from probe.net.ws_client import WsOptions
from probe.run.control import keep_busy, measure_rtt, timed

Observer = Callable[[dict[str, Any]], None]

STATES = ("unreplied", "replied", "stream")
#: The stream state's second exchange: Linux conntrack counts a flow as a
#: stream once it has a reply and a packet more than 2 s after its first.
STREAM_GAP_S = 2.5
#: Binding a probe: tries, each waiting for the server's answer this long
#: (at least; the grace is used when it is longer).
BIND_TRIES = 3
BIND_WAIT_S = 1.0
#: Probes the server refused or that never bound, in a row, before giving up.
MAX_OPEN_FAILURES = 5
#: The fewest probes a state's planner works with.
MIN_POOL = 2


@dataclass(frozen=True)
class UdpDiscoverOptions:
    target: Target
    control: Target
    planner: PlannerConfig
    token: str | None = None
    grace_s: float | None = None
    ws: WsOptions | None = None
    timeout_s: float = 10.0
    states: tuple[str, ...] = STATES
    inbound_refresh: bool = True


@dataclass
class _Probe:
    """One UDP probe: a socket, the server's id for it, and what came back."""

    state: str
    conn: int
    hexid: str = ""
    sock: UdpProbeSocket | None = None
    task: asyncio.Task[None] | None = None
    observed: str | None = None
    #: Set when the server reports a datagram of ours (seen) or we get a reply.
    seen: asyncio.Event = field(default_factory=asyncio.Event)
    replies: int = 0
    replied: asyncio.Event = field(default_factory=asyncio.Event)
    reply_at: float = 0.0
    server_idle: float | None = None
    arrived: bool = False


class UdpDiscoverRun:
    """One UDP discovery. ``result()`` gives what is known, at any moment."""

    def __init__(
        self, options: UdpDiscoverOptions, clock: Callable[[], float] = time.monotonic, observer: Observer | None = None
    ) -> None:
        self.options = options
        self.clock = clock
        self.observer = observer
        cfg = replace(options.planner, reuse=False)
        self.planners: dict[str, Planner] = {s: Planner(self._for_state(cfg, s)) for s in options.states}
        self.started: float | None = None
        self.settled: float | None = None
        self.interrupted = False
        self.nat: dict[str, Any] = {}
        self.server_name: str | None = None
        self.rtt_s: float | None = None
        self.ip_version = 4
        self.inbound_refresh: bool | None = None
        self._events: asyncio.Queue[Callable[[], None] | None] = asyncio.Queue()
        self._fatal: BaseException | None = None
        self._control: MessageConnection | None = None
        self._probes: dict[tuple[str, int], _Probe] = {}
        self._by_hex: dict[str, _Probe] = {}
        self._requests: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._open_failures = 0
        self._refresh: RefreshEvidence | None = None
        self._refresh_probe: _Probe | None = None
        self._refresh_changed = asyncio.Event()
        self._opened = 0
        self._reported: dict[str, int] = {}

    @staticmethod
    def _for_state(cfg: PlannerConfig, state: str) -> PlannerConfig:
        return replace(cfg, open_delay_s=STREAM_GAP_S) if state == "stream" else cfg

    # Public --------------------------------------------------------------

    async def run(self) -> DiscoverResult:
        opts = self.options
        control = await open_protocol(opts.control, opts.ws, timeout_s=opts.timeout_s)
        helpers: list[asyncio.Task[Any]] = []
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        try:
            welcome = await control.hello(opts.token, opts.timeout_s)
            if not welcome.raw.get("udp"):
                raise TargetError(
                    f"{control.where} answers no UDP probes: start it with --udp {opts.target.host}:{opts.target.port}",
                    code="no_udp",
                )
            self._control = control
            self.server_name = welcome.server
            self.ip_version = 6 if ":" in opts.target.host else 4
            self.rtt_s = await measure_rtt(control, self.clock, opts.timeout_s)
            for state, planner in self.planners.items():
                cfg = planner.config
                self.planners[state] = Planner(timed(cfg, self.rtt_s, opts.grace_s, cfg.max_conns))
            for signum in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(signum, self._interrupt)
                    installed.append(signum)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass
            helpers.append(asyncio.create_task(self._control_reader(control)))
            helpers.append(asyncio.create_task(keep_busy(control, self._fail)))
            self._emit("start", target=str(opts.target), control=str(opts.control), rtt_s=round(self.rtt_s, 5))
            self.started = self.clock()
            if opts.inbound_refresh:
                helpers.append(asyncio.create_task(self._refresh_test()))
            await self._loop()
            if not self.interrupted:
                await self._await_refresh_verdict()
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
            for task in helpers:
                task.cancel()
            for probe in list(self._probes.values()):
                self._drop(probe, release=False)
            if self._refresh_probe is not None:
                self._drop(self._refresh_probe, release=False)
            control.abort()
            for task in helpers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        result = self.result()
        self._emit("result", result=result.to_json())
        return result

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
        cfg = planner.config
        return DiscoverResult(
            target=str(self.options.target),
            transport="udp",
            bracket=planner.bracket(),
            tests=tests,
            wall_s=(self.settled if self.settled is not None else now) - started,
            total_s=now - started,
            nat=self.nat or nat_facts("", ""),
            max_idle_s=cfg.max_idle_s,
            reason="interrupted" if self.interrupted else states[shortest].reason,
            interrupted=self.interrupted,
            server=self.server_name,
            connections={
                "max_open": sum(p.stats.max_open for p in self.planners.values()) + 2,
                "opened": self._opened + 1,
                "asked": self.options.planner.max_conns,
                "pool": cfg.max_conns,
                "limited_by_server": False,
                "server_limits": None,
            },
            target_width_s=planner.target_width(planner.bracket()),
            grace_s=cfg.grace_s,
            rtt_s=self.rtt_s,
            after_expiry=None,
            ip_version=self.ip_version,
            states=states,
            inbound_refresh=self.inbound_refresh,
            control=str(self.options.control),
        )

    # Event plumbing ----------------------------------------------------------

    def _emit(self, name: str, **fields: Any) -> None:
        if self.observer is not None:
            t = 0.0 if self.started is None else self.clock() - self.started
            self.observer({"event": name, "t": round(t, 3), **fields})

    def _post(self, state: str, call: Callable[[], list[Action]]) -> None:
        self._events.put_nowait(lambda: self._apply(state, call()))

    def _interrupt(self) -> None:
        self.interrupted = True
        self._events.put_nowait(None)

    def _fail(self, exc: BaseException) -> None:
        if self._fatal is None:
            self._fatal = exc
        self._events.put_nowait(None)

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
        for action in actions:
            if isinstance(action, Open):
                probe = _Probe(state, action.conn)
                self._probes[(state, action.conn)] = probe
                probe.task = asyncio.create_task(self._bind(probe))
            elif isinstance(action, Probe):
                probe = self._probes[(state, action.conn)]
                if self._control is not None:
                    self._control.send({"op": "push_now", "id": f"p.{state}.{action.conn}", "probe": probe.hexid})
                    age = planner.conns[action.conn].age(self.clock())
                    self._emit("probe", state=state, conn=action.conn, age_s=round(age, 3))
            elif isinstance(action, Close):
                closing = self._probes.pop((state, action.conn), None)
                if closing is not None:
                    self._drop(closing)
            elif isinstance(action, Finish):
                self._emit("finish", state=state, reason=action.reason)
        reported = self._reported.get(state, 0)
        for test in planner.evidence.tests[reported:]:
            self._emit("test", **(test.to_json() | {"state": state}))
        self._reported[state] = len(planner.evidence.tests)

    # Probes ------------------------------------------------------------------

    async def _request(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Send a control request and wait for the answer with its id."""
        assert self._control is not None
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._requests[msg["id"]] = future
        self._control.send(msg)
        try:
            async with asyncio.timeout(self.options.timeout_s):
                return await future
        finally:
            self._requests.pop(msg["id"], None)

    async def _new_probe(self, probe: _Probe) -> None:
        """Get an id from the server and a fresh socket (a fresh source port)."""
        answer = await self._request({"op": "udp_open", "id": f"u.{probe.state}.{probe.conn}"})
        hexid = answer.get("probe")
        if not isinstance(hexid, str):
            raise TargetError(f"the server refused a UDP probe ({str(answer.get('reason'))[:40]})", code="busy")
        probe.hexid = hexid
        self._by_hex[hexid] = probe
        target = self.options.target
        probe.sock = await UdpProbeSocket.open(
            target.host, target.port, bytes.fromhex(hexid), partial(self._datagram, probe), self.clock
        )
        self._opened += 1

    async def _exchange(self, probe: _Probe, kind: Kind, event: asyncio.Event) -> bool:
        """Send until ``event`` (the server's report or reply) comes; False if it never does."""
        assert probe.sock is not None
        wait = max(BIND_WAIT_S, max(p.config.grace_s for p in self.planners.values()))
        for _ in range(BIND_TRIES):
            event.clear()
            probe.sock.send(kind, self.clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await event.wait()
                    return True
        return False

    async def _bind(self, probe: _Probe) -> None:
        """Bring a probe into its state, then hand it to its planner, idle."""
        planner = self.planners[probe.state]
        try:
            await self._new_probe(probe)
            assert probe.sock is not None
            if probe.state == "unreplied":
                ok = await self._exchange(probe, Kind.HELLO, probe.seen)
                since = probe.sock.sent_at
            else:
                ok = await self._exchange(probe, Kind.ECHO, probe.replied)
                if ok and probe.state == "stream":
                    first = probe.sock.sent_at or self.clock()
                    await asyncio.sleep(max(0.0, first + STREAM_GAP_S - self.clock()))
                    ok = await self._exchange(probe, Kind.ECHO, probe.replied)
                since = probe.reply_at
        except (TargetError, TimeoutError) as exc:
            self._open_failed(probe, exc if isinstance(exc, TargetError) else TargetError("no answer to udp_open"))
            return
        if not ok:
            self._open_failed(probe, TargetError(f"no answer from {self.options.target}"))
            return
        self._open_failures = 0
        self._post(probe.state, partial(planner.opened, probe.conn, self.clock(), since=since))

    def _open_failed(self, probe: _Probe, exc: TargetError) -> None:
        planner = self.planners[probe.state]
        self._open_failures += 1
        if exc.code == "busy" and planner.config.max_conns > MIN_POOL:
            # The server's per-session or per-address limit: fewer probes, slower.
            planner.config = replace(planner.config, max_conns=max(MIN_POOL, len(planner.conns) - 1))
        if self._open_failures >= MAX_OPEN_FAILURES * len(self.planners):
            self._fail(exc)
            return
        self._post(probe.state, partial(planner.open_failed, probe.conn, self.clock()))

    def _datagram(self, probe: _Probe, msg: Datagram, at: float) -> None:
        if msg.kind is Kind.REPLY:
            probe.replies += 1
            probe.reply_at = at
            if probe.sock is not None:
                probe.sock.cookie = msg.cookie
            probe.replied.set()
            return
        if probe is self._refresh_probe:
            if self._refresh is not None:
                self._refresh.arrived(at)
                self._refresh_changed.set()
            return
        if probe.arrived or probe.state not in self.planners:
            return  # a second copy of the same push
        probe.arrived = True
        planner = self.planners[probe.state]
        self._post(probe.state, partial(planner.arrived, probe.conn, probe.server_idle, at))

    def _drop(self, probe: _Probe, release: bool = True) -> None:
        if probe.task is not None and not probe.task.done():
            probe.task.cancel()
        if probe.sock is not None:
            probe.sock.close()
        self._by_hex.pop(probe.hexid, None)
        if release and probe.hexid and self._control is not None:
            with contextlib.suppress(OSError, RuntimeError):
                self._control.send({"op": "release", "probe": probe.hexid})

    # Control -----------------------------------------------------------------

    async def _control_reader(self, control: MessageConnection) -> None:
        try:
            while True:
                msg = await control.recv()
                op = msg.get("op")
                if op == "udp_probe":
                    future = self._requests.get(str(msg.get("id")))
                    if future is not None and not future.done():
                        future.set_result(msg)
                elif op == "udp_seen":
                    self._seen(msg)
                elif op == "pushed" and "probe" in msg:
                    self._pushed(msg)
        except ConnectionEnded as exc:
            self._fail(TargetError(f"lost the control connection to {control.where} ({exc})"))
        except TargetError as exc:
            self._fail(exc)

    def _seen(self, msg: dict[str, Any]) -> None:
        probe = self._by_hex.get(str(msg.get("probe")))
        if probe is None:
            return
        observed = msg.get("observed")
        if isinstance(observed, str):
            probe.observed = observed
            if not self.nat and probe.sock is not None:
                self.nat = nat_facts(probe.sock.local_address, observed)
        probe.seen.set()

    def _pushed(self, msg: dict[str, Any]) -> None:
        ident = str(msg.get("id", ""))
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

    async def _refresh_test(self) -> None:
        """One probe, replied and validated, then silent while the server beats."""
        probe = _Probe("refresh", -1)
        self._refresh_probe = probe
        try:
            await self._new_probe(probe)
            if not await self._exchange(probe, Kind.ECHO, probe.replied):
                return
            # Echo the reply's cookie: the server may now send this address
            # more than 3x what it received (the beats).
            if not await self._exchange(probe, Kind.ECHO, probe.replied):
                return
        except (TargetError, TimeoutError):
            return
        assert probe.sock is not None and probe.sock.sent_at is not None and self._control is not None
        self._refresh = RefreshEvidence(probe.sock.sent_at)
        beat = 0
        while True:
            await asyncio.sleep(beat_interval(self._longest("longest_survived")))
            beat += 1
            self._refresh.ask(beat, self.clock())
            self._control.send({"op": "push_now", "id": f"r.{beat}", "probe": probe.hexid, "copies": 1})

    def _refresh_verdict(self) -> bool | None:
        if self._refresh is None:
            return None
        grace = max(p.config.grace_s for p in self.planners.values())
        return self._refresh.verdict(self.clock(), self._longest("upper"), grace)

    async def _await_refresh_verdict(self) -> None:
        """Wait, bounded, until the refresh probe has been silent long enough."""
        upper = self._longest("upper")
        if self._refresh is None or upper is None:
            return
        grace = max(p.config.grace_s for p in self.planners.values())
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
