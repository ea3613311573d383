"""The design connections of a TCP or WebSocket discovery (core/designs.py
judges them; this module only carries their traffic and their pushes)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable

from websockets.exceptions import ConnectionClosed

from probe.core.designs import CONFIRM_FACTOR, Design, DesignTrials
from probe.core.evidence import Bracket, FailureMode
from probe.core.keepalive import KeepaliveSettings
from probe.core.recommend import keepalive_probe_interval
from probe.core.server_messages import Push, read_server
from probe.errors import TargetError
from probe.net.client import ConnectionEnded, MessageConnection
from probe.net.dial import Endpoint, dial
from probe.net.ws_client import WsProtocolConnection
from probe.run.control import Dispatcher, stop

#: Unanswered keepalive probes before the client's kernel gives a design connection up.
KEEPALIVE_COUNT = 5
#: The longest the design step waits for connections to age past the bound.
MAX_AGE_WAIT_S = 5.0
#: ``--confirm``: how much longer than the hold its connections may take to open.
CONFIRM_SLACK_S = 60.0


def client_keepalive(every_s: float) -> KeepaliveSettings:
    """The client's kernel keepalive on its design connection: probes after
    ``every_s`` of idle (whole seconds), then as often as the plan says."""
    idle = max(1, int(every_s))
    return KeepaliveSettings(idle_s=idle, interval_s=keepalive_probe_interval(idle), count=KEEPALIVE_COUNT)


class DesignStep:
    """What the design connections (TCP, WebSocket) and the design probes
    (UDP) share: open one per design, and once each is idle past the bound,
    push on it and listen for the push."""

    def __init__(self, trials: DesignTrials, clock: Callable[[], float]) -> None:
        self.trials = trials
        self.clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._news = asyncio.Event()

    @property
    def held(self) -> int:
        """Design connections opened (each counts against every connection limit)."""
        raise NotImplementedError

    async def open_all(self) -> None:
        await asyncio.gather(*(self._open(d) for d in self.trials.to_open()))

    async def _open(self, design: Design) -> None:
        raise NotImplementedError

    def _heard(self, design: Design) -> None:
        """The push on ``design``'s connection arrived, or the connection ended."""
        self._news.set()

    async def push_all(
        self, push: Callable[[Design], None], upper_s: float, grace_s: float, max_wait_s: float = MAX_AGE_WAIT_S
    ) -> None:
        """Once every design connection is idle past ``upper_s``, ``push`` on
        each and give the pushes ``grace_s`` to arrive."""
        wait = self.trials.wait_before_push(upper_s, self.clock())
        if wait > max_wait_s:
            return
        if wait > 0:
            await asyncio.sleep(wait)
        due = self.trials.to_push()
        for design in due:
            self.trials.asked(design, self.clock())
            push(design)
        deadline = self.clock() + grace_s
        while self.trials.to_hear(due) and (left := deadline - self.clock()) > 0:
            self._news.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._news.wait()


class DesignConnections(DesignStep):
    """One connection per design, each silent but for its design's traffic."""

    def __init__(self, endpoint: Endpoint, trials: DesignTrials, clock: Callable[[], float], run: str | None) -> None:
        super().__init__(trials, clock)
        self.endpoint = endpoint
        self._run = run
        self._conns: dict[Design, MessageConnection] = {}
        self._sessions: dict[Design, str] = {}

    @property
    def held(self) -> int:
        return len(self._sessions)

    def pusher(self, dispatch: Dispatcher) -> Callable[[Design], None]:
        """Push on a design connection through the run's control connection."""
        return lambda design: self._push(dispatch, design)

    def _push(self, dispatch: Dispatcher, design: Design) -> None:
        dispatch.request({"op": "push_now", "session": self._sessions[design]})

    async def _open(self, design: Design) -> None:
        endpoint = self.endpoint
        every = self.trials.every_s(design)
        keepalive = client_keepalive(every) if design is Design.TCP_KEEPALIVE else None
        asks: dict[str, float] = {}
        if design is Design.SERVER_KEEPALIVE:
            asks["keepalive_s"] = max(1, int(every))
        elif design is Design.SERVER_DATA:
            asks["tick_every_s"] = every
        try:
            conn = await dial(endpoint, keepalive)
        except TargetError as exc:
            self.trials.open_failed(design, exc.message)
            return
        try:
            welcome = await conn.hello(endpoint.token, endpoint.timeout_s, self._run, **asks)
        except TargetError as exc:
            conn.abort()
            self.trials.open_failed(design, exc.message)
            return
        if design is Design.SERVER_KEEPALIVE and welcome.raw.get("keepalive_s") is None:
            conn.abort()
            self.trials.open_failed(design, "the server could not turn on its keepalive")
            return
        self._conns[design] = conn
        self._sessions[design] = welcome.session
        self.trials.opened(design, self.clock())
        self._tasks.append(asyncio.create_task(self._read(design, conn)))
        self._tasks.append(asyncio.create_task(self._traffic(design, conn)))

    async def _read(self, design: Design, conn: MessageConnection) -> None:
        while True:
            try:
                msg = read_server(await conn.recv())
            except ConnectionEnded as exc:
                self.trials.ended(design, exc.mode, self.clock())
                break
            except TargetError:
                # The server closed it with a reason (its run ended, a limit).
                self.trials.ended(design, FailureMode.CLOSED, self.clock())
                break
            if isinstance(msg, Push):
                conn.send({"op": "ack", "id": msg.id})
                self.trials.arrived(design, self.clock())
                self._heard(design)
        self._heard(design)

    async def _traffic(self, design: Design, conn: MessageConnection) -> None:
        """The client's side of the design's traffic; the kernel's, or the
        server's, needs nothing from here."""
        if design not in (Design.CLIENT_DATA, Design.HEARTBEAT, Design.WS_PING):
            return
        # Bounded by the connection: it ends when the run closes it.
        for n in itertools.count():
            await asyncio.sleep(self.trials.every_s(design))
            try:
                if design is Design.CLIENT_DATA:
                    conn.send({"op": "tick"})
                elif design is Design.HEARTBEAT:
                    conn.send({"op": "beat", "id": f"h{n}"})
                elif isinstance(conn, WsProtocolConnection):
                    await conn.send_ping()
            except (OSError, RuntimeError, ConnectionClosed):
                return

    async def confirm(
        self, dispatch: Dispatcher, bracket: Bracket, grace_s: float, verdicts: dict[Design, bool | None]
    ) -> None:
        """``--confirm``: these connections run at the recommended interval (the
        trials' fixed one); held 1.5 x the bound, then pushed on. ``verdicts``
        gets each design's, whatever ends the step (an interrupt too)."""
        upper = bracket.upper
        if upper is None:
            return
        hold = CONFIRM_FACTOR * upper
        try:
            await self.open_all()
            await self.push_all(self.pusher(dispatch), hold, grace_s, max_wait_s=hold + CONFIRM_SLACK_S)
        finally:
            await self.close()
            outcomes = self.trials.outcomes(hold, lower_s=bracket.lower)
            verdicts.update({d: o.kept for d, o in outcomes.items()})

    async def close(self) -> None:
        for conn in self._conns.values():
            conn.abort()
        self._conns.clear()
        await stop(self._tasks)
