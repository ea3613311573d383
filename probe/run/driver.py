"""The one asyncio driver of a discovery, for every transport.

It carries events from the sockets to the sans-I/O :class:`Discovery` and
its commands back to the sockets, and nothing else: what to test and when is
the Discovery's, how to open, push on and close a connection is the
transport's (run/discover.py for TCP and WebSocket, run/discover_udp.py for
UDP probes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

from probe.core import commands as cmd
from probe.core.discovery import Discovery
from probe.core.events import Event
from probe.core.progress import Progress
from probe.core.results import DiscoverResult
from probe.core.server_messages import Pushed, Reply
from probe.errors import TargetError
from probe.run.control import RunEvents

#: An input for the Discovery: called when the loop gets to it.
Input = Callable[[], list[cmd.Command]]


class Driver(RunEvents[Input]):
    """The loop and the command dispatch; a transport fills in the verbs."""

    discovery: Discovery

    def __init__(self, clock: Callable[[], float], observer: Callable[[dict[str, Any]], None] | None) -> None:
        super().__init__(clock, observer)
        #: Why the last open failed: the run's error if the Discovery gives up.
        self._open_error: TargetError | None = None

    @property
    def settled(self) -> float | None:
        return self.discovery.settled

    def progress(self, now: float) -> Progress:
        """What the live view shows at ``now``: one block per flow state."""
        return self.discovery.progress(self.target_text, now)

    def result(self) -> DiscoverResult:
        """What is known now, at any moment of the run."""
        raise NotImplementedError

    @property
    def target_text(self) -> str:
        raise NotImplementedError

    def _done(self) -> DiscoverResult:
        result = self.result()
        self._emit(Event.RESULT, result=result.to_json())
        return result

    # What a transport does ---------------------------------------------------

    def _open(self, key: cmd.Key) -> None:
        raise NotImplementedError

    def _push(self, command: cmd.RequestPush) -> bool:
        """Ask for the push; False if the connection cannot be pushed on yet."""
        raise NotImplementedError

    def _release(self, key: cmd.Key, session: str | None) -> None:
        raise NotImplementedError

    def _keep(self, key: cmd.Key) -> bool:
        """Keep the connection for the after-expiry test; False if it is gone."""
        raise NotImplementedError

    # The loop ------------------------------------------------------------------

    def _post(self, event: Input) -> None:
        self._events.put_nowait(event)

    def _pushed(self, key: cmd.Key, reply: asyncio.Future[Reply]) -> None:
        """The server's answer to a push request (a ``RequestPush``), for the Discovery."""
        if reply.cancelled():
            return
        msg = reply.result()
        if isinstance(msg, Pushed) and msg.sent and msg.idle_s is not None:
            self._post(partial(self.discovery.pushed, key, msg.idle_s, self.clock()))
        else:
            self._post(partial(self.discovery.not_pushed, key, self.clock()))

    def _open_failed(self, key: cmd.Key, exc: TargetError) -> None:
        self._open_error = exc
        self._post(lambda: self.discovery.open_failed(key, self.clock(), busy=exc.code == "busy"))

    async def _loop(self) -> None:
        discovery = self.discovery
        self.started = self.clock()
        self._apply(discovery.start(self.started))
        while discovery.settled is None:
            wake = discovery.next_wakeup()
            event: Input | None
            try:
                async with asyncio.timeout(None if wake is None else max(0.0, wake - self.clock())):
                    event = await self._events.get()
            except TimeoutError:
                self._apply(discovery.tick(self.clock()))
                continue
            if self._fatal is not None:
                raise self._fatal
            if event is None:
                if self.interrupted:
                    return
                continue
            self._apply(event())

    def _apply(self, commands: list[cmd.Command]) -> None:
        for command in commands:
            match command:
                case cmd.OpenConnection(key=key):
                    self._open(key)
                case cmd.RequestPush(key=key, age_s=age_s):
                    if self._push(command):
                        self._emit(Event.PROBE, **self._where(key), age_s=round(age_s, 3))
                case cmd.Release(key=key, session=session):
                    self._release(key, session)
                case cmd.KeepForAfterExpiry(key=key):
                    if not self._keep(key):
                        self.discovery.forget_kept()
                        self._release(key, None)
                case cmd.Finished(state=state, reason=reason):
                    self._emit(Event.FINISH, **self._state(state), reason=reason)
                case cmd.Recorded(test=test, state=state):
                    self._emit(Event.TEST, **(test.to_json() | self._state(state)))
                case cmd.GiveUp():
                    self._fail(self._open_error or TargetError("every connection failed to open"))

    def _state(self, state: str | None) -> dict[str, str]:
        return {"state": state} if state is not None and self.discovery.udp else {}

    def _where(self, key: cmd.Key) -> dict[str, Any]:
        return self._state(key[0]) | {"conn": key[1]}
