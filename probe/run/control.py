"""The control connection's chores, shared by every discovery (TCP, WebSocket, UDP)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import statistics
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from probe.core.events import Event
from probe.core.server_messages import BeatAck, Pong, Pushed, Reply, ServerMessage, UdpProbeReply, read_server
from probe.errors import TargetError
from probe.net.client import ConnectionEnded, MessageConnection, answer

CONTROL_PING_S = 0.5


async def measure_rtt(
    control: MessageConnection, clock: Callable[[], float], timeout_s: float, count: int = 3
) -> float:
    """The median of ``count`` ping/pong round trips on the control connection."""
    samples = []
    for n in range(count):
        sent = clock()
        control.send({"op": "ping", "id": f"rtt{n}"})
        msg = await answer(control, timeout_s, "stopped answering pings")
        if msg.get("op") != "pong":
            raise TargetError(f"{control.where} answered ping with {str(msg.get('op'))[:40]!r}")
        samples.append(clock() - sent)
    return statistics.median(samples)


_REPLIES = (Pushed, Pong, BeatAck, UdpProbeReply)


class Dispatcher:
    """The control connection's one reader.

    Each request gets an id of its own and a future, which the reply with
    that id resolves: no caller parses ids. What answers no request (a
    ``push_unacked`` report, ``udp_seen``) goes to ``on_news``, typed.
    """

    def __init__(self, control: MessageConnection, fail: Callable[[BaseException], None]) -> None:
        self.control = control
        self.fail = fail
        self.on_news: Callable[[ServerMessage], None] = lambda msg: None
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._ids = itertools.count(1)

    def request(self, msg: dict[str, Any]) -> asyncio.Future[Reply]:
        """Send ``msg`` with a fresh id; the future holds its reply."""
        ident = f"r{next(self._ids)}"
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        self.control.send({**msg, "id": ident})
        return future

    async def read(self) -> None:
        control = self.control
        try:
            while True:
                msg = read_server(await control.recv())
                if isinstance(msg, _REPLIES) and msg.id is not None:
                    future = self._pending.pop(msg.id, None)
                    if future is not None:
                        if not future.done():
                            future.set_result(msg)
                        continue
                if msg is not None:
                    self.on_news(msg)
        except ConnectionEnded as exc:
            self.fail(TargetError(f"lost the control connection to {control.where} ({exc})"))
        except TargetError as exc:
            self.fail(exc)
        finally:
            for future in self._pending.values():
                future.cancel()
            self._pending.clear()


async def keep_busy(control: MessageConnection, fail: Callable[[BaseException], None]) -> None:
    """Ping the control connection steadily.

    It crosses the same middleboxes; steady traffic keeps it from ever being
    idle long enough to be forgotten.
    """
    while True:
        await asyncio.sleep(CONTROL_PING_S)
        try:
            control.send({"op": "ping"})
        except (OSError, RuntimeError) as exc:
            fail(TargetError(f"lost the control connection to {control.where} ({exc})"))
            return


@contextlib.contextmanager
def on_interrupt(handler: Callable[[], None]) -> Iterator[None]:
    """Call ``handler`` on SIGINT or SIGTERM while inside (where the loop can)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, handler)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def interrupts(handler: Callable[[], None], enabled: bool = True) -> contextlib.AbstractContextManager[None]:
    """``on_interrupt(handler)``, or nothing where the caller handles the
    signals itself (a survey for its paths, the exporter for its jobs)."""
    return on_interrupt(handler) if enabled else contextlib.nullcontext()


async def stop(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel helper tasks and wait for them, whatever they raise."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


E = TypeVar("E")


class RunEvents(Generic[E]):
    """A discovery's event queue, observer and ways to stop: ``None`` on the
    queue wakes the loop to look at ``interrupted`` and ``fatal``."""

    def __init__(self, clock: Callable[[], float], observer: Callable[[dict[str, Any]], None] | None) -> None:
        self.clock = clock
        self.observer = observer
        self.started: float | None = None
        self.interrupted = False
        self._events: asyncio.Queue[E | None] = asyncio.Queue()
        self._fatal: BaseException | None = None
        #: False when something above runs several discoveries (a survey):
        #: one signal handler per signal, so that one stops them all.
        self.own_signals = True

    def interrupt(self) -> None:
        """Stop as Ctrl-C does: what was measured is the result."""
        self.interrupted = True
        self._events.put_nowait(None)

    def signals(self) -> contextlib.AbstractContextManager[None]:
        return interrupts(self.interrupt, self.own_signals)

    def _emit(self, name: Event, **fields: Any) -> None:
        if self.observer is not None:
            self.observer({"event": name, "t": round(self._elapsed(), 3), **fields})

    def _elapsed(self) -> float:
        return 0.0 if self.started is None else self.clock() - self.started

    def _fail(self, exc: BaseException) -> None:
        if self._fatal is None:
            self._fatal = exc
        self._events.put_nowait(None)
