"""The design probes of a UDP discovery: one probe (one binding) per design,
each carrying only its design's datagrams (core/designs.py judges them)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from probe.core.designs import Design, DesignTrials
from probe.core.udp_wire import Kind
from probe.errors import TargetError
from probe.run.control import stop
from probe.run.designs import DesignStep
from probe.run.udp_session import UdpProbe, UdpSession

#: What each design sends: one-way (the server sends nothing back), or answered.
SENDS = {Design.CLIENT_ONLY: Kind.HELLO, Design.REQUEST_RESPONSE: Kind.ECHO}


class UdpDesignProbes(DesignStep):
    def __init__(self, session: UdpSession, trials: DesignTrials, clock: Callable[[], float]) -> None:
        super().__init__(trials, clock)
        self.session = session
        self._probes: dict[Design, UdpProbe] = {}

    @property
    def held(self) -> int:
        return len(self._probes)

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
            self._heard(probe.tag)

    def push(self, design: Design) -> None:
        self.session.push(self._probes[design])

    async def close(self) -> None:
        await stop(self._tasks)
        for probe in self._probes.values():
            self.session.drop(probe, release=False)
