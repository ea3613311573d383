"""The design probes of a UDP discovery: one probe (one binding) per design,
each carrying only its design's datagrams (core/designs.py judges them)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable

from probe.core.designs import Design, DesignTrials
from probe.core.udp_wire import Kind
from probe.errors import TargetError
from probe.run.control import stop
from probe.run.designs import MAX_AGE_WAIT_S
from probe.run.udp_session import UdpProbe, UdpSession

#: What each design sends: one-way (the server sends nothing back), or answered.
SENDS = {Design.CLIENT_ONLY: Kind.HELLO, Design.REQUEST_RESPONSE: Kind.ECHO}


class UdpDesignProbes:
    def __init__(self, session: UdpSession, trials: DesignTrials, clock: Callable[[], float]) -> None:
        self.session = session
        self.trials = trials
        self.clock = clock
        self._probes: dict[Design, UdpProbe] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._news = asyncio.Event()

    @property
    def held(self) -> int:
        return len(self._probes)

    async def open_all(self) -> None:
        await asyncio.gather(*(self._open(d) for d in self.trials.to_open()))

    async def _open(self, design: Design) -> None:
        try:
            probe = await self.session.open(design)
        except TargetError as exc:
            self.trials.open_failed(design, exc.message)
            return
        # One answered exchange binds it (and tells the address the server
        # sees); from then on only the design's own datagrams.
        if not await self.session.exchange(probe, Kind.ECHO):
            self.session.drop(probe)
            self.trials.open_failed(design, "the server never answered the probe")
            return
        self._probes[design] = probe
        self.trials.opened(design, self.clock())
        self._tasks.append(asyncio.create_task(self._traffic(design, probe)))

    async def _traffic(self, design: Design, probe: UdpProbe) -> None:
        # Bounded by the run: the task is cancelled when the probes close.
        for _ in itertools.count():
            await asyncio.sleep(self.trials.every_s(design))
            if probe.sock is None:
                return
            probe.sock.send(SENDS[design], self.clock())

    def arrived(self, probe: UdpProbe, at: float) -> None:
        """A push copy on one of these probes (the session's ``on_push``)."""
        if isinstance(probe.tag, Design) and self._probes.get(probe.tag) is probe:
            self.trials.arrived(probe.tag, at)
            self._news.set()

    async def push_all(self, upper_s: float, grace_s: float) -> None:
        """Once every design probe is idle past ``upper_s`` (apart from its own
        datagrams), push on each and give the copies ``grace_s`` to arrive."""
        wait = self.trials.wait_before_push(upper_s, self.clock())
        if wait > MAX_AGE_WAIT_S:
            return
        if wait > 0:
            await asyncio.sleep(wait)
        due = self.trials.to_push()
        for design in due:
            self.trials.asked(design, self.clock())
            self.session.push(self._probes[design])
        deadline = self.clock() + grace_s
        while self.trials.to_hear(due) and (left := deadline - self.clock()) > 0:
            self._news.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._news.wait()

    async def close(self) -> None:
        await stop(self._tasks)
        for probe in self._probes.values():
            self.session.drop(probe, release=False)
