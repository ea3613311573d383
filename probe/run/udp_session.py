"""A control connection and the UDP probes it drives (shared by discover and check).

The control connection (TCP or WebSocket) asks the server for probe ids,
learns where each probe's datagrams came from, and asks for pushes; each
probe is its own UDP socket. This module brings a probe into a flow state
(docs/discovery.md) and reports what arrives; what to test, and when, is
the caller's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from probe.core.nat import NatFacts, nat_facts
from probe.core.server_messages import Reply, ServerMessage, UdpProbeReply, UdpSeen
from probe.core.targets import Target
from probe.core.udp_wire import Datagram, Kind
from probe.errors import TargetError
from probe.net.client import MessageConnection
from probe.net.udp_client import UdpProbeSocket
from probe.run.control import Dispatcher

#: The stream state's second exchange: Linux conntrack counts a flow as a
#: stream once it has a reply and a packet more than 2 s after its first.
STREAM_GAP_S = 2.5
#: Binding a probe: tries, each waiting at least this long for the answer.
BIND_TRIES = 3
BIND_WAIT_S = 1.0
#: Sockets to try for a source port this run has not used yet.
PORT_TRIES = 8


@dataclass
class UdpProbe:
    """One UDP probe: a socket, the server's id for it, and what came back."""

    tag: Any
    hexid: str = ""
    sock: UdpProbeSocket | None = None
    task: asyncio.Task[None] | None = None
    observed: str | None = None
    #: The server reported a datagram of ours.
    seen: asyncio.Event = field(default_factory=asyncio.Event)
    replied: asyncio.Event = field(default_factory=asyncio.Event)
    reply_at: float = 0.0
    #: The idle the server measured when it pushed (from ``pushed``).
    server_idle: float | None = None
    #: For the caller: a push's first copy arrived (later copies are ignored).
    arrived: bool = False


def require_udp(welcome_raw: dict[str, Any], where: str, target: Target) -> None:
    """A clear error when the server has no UDP listener."""
    if not welcome_raw.get("udp"):
        raise TargetError(
            f"{where} answers no UDP probes: start it with --udp {target.host}:{target.port}", code="no_udp"
        )


class UdpSession:
    def __init__(
        self,
        control: MessageConnection,
        target: Target,
        clock: Callable[[], float],
        timeout_s: float,
        fail: Callable[[BaseException], None],
    ) -> None:
        self.control = control
        self.target = target
        self.clock = clock
        self.timeout_s = timeout_s
        self.fail = fail
        #: How long to wait for an answer to each bind try (the caller sets it
        #: from the RTT).
        self.wait_s = BIND_WAIT_S
        self.nat: NatFacts | None = None
        self.opened = 0
        #: Called with each push copy that arrives.
        self.on_push: Callable[[UdpProbe, float], None] = lambda probe, at: None
        #: The control connection's reader: run ``reader()`` as a task.
        self.dispatch = Dispatcher(control, fail)
        self.dispatch.on_news = self._news
        self._by_hex: dict[str, UdpProbe] = {}
        #: Source ports this run has used: a port the kernel hands out again
        #: could meet its old binding, still alive in the NAT.
        self._ports: set[str] = set()

    # Probes ------------------------------------------------------------------

    async def open(self, tag: Any) -> UdpProbe:
        """A new probe: an id from the server and a fresh socket (a fresh source port)."""
        probe = UdpProbe(tag)
        try:
            async with asyncio.timeout(self.timeout_s):
                answer = await self.dispatch.request({"op": "udp_open"})
        except TimeoutError:
            raise TargetError(f"{self.control.where} did not answer udp_open") from None
        hexid = answer.probe if isinstance(answer, UdpProbeReply) else None
        if hexid is None:
            reason = answer.reason if isinstance(answer, UdpProbeReply) else None
            raise TargetError(f"the server refused a UDP probe ({str(reason)[:40]})", code="busy")
        probe.hexid = hexid
        self._by_hex[hexid] = probe
        for _ in range(PORT_TRIES):
            sock = await UdpProbeSocket.open(
                self.target.host, self.target.port, bytes.fromhex(hexid), partial(self._datagram, probe), self.clock
            )
            if sock.local_address not in self._ports:
                break
            sock.close()
        self._ports.add(sock.local_address)
        probe.sock = sock
        self.opened += 1
        return probe

    async def exchange(self, probe: UdpProbe, kind: Kind) -> bool:
        """Send until the server reports the datagram (HELLO) or replies (ECHO);
        False if it never does."""
        assert probe.sock is not None
        event = probe.seen if kind is Kind.HELLO else probe.replied
        for _ in range(BIND_TRIES):
            event.clear()
            probe.sock.send(kind, self.clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(BIND_WAIT_S, self.wait_s)):
                    await event.wait()
                    return True
        return False

    async def bind(self, probe: UdpProbe, state: str) -> float | None:
        """Bring the probe into ``state``; return when its idle period began
        (its last packet), or None if the server never answered."""
        assert probe.sock is not None
        if state == "unreplied":
            return probe.sock.sent_at if await self.exchange(probe, Kind.HELLO) else None
        if not await self.exchange(probe, Kind.ECHO):
            return None
        if state == "stream":
            first = probe.sock.sent_at or self.clock()
            await asyncio.sleep(max(0.0, first + STREAM_GAP_S - self.clock()))
            if not await self.exchange(probe, Kind.ECHO):
                return None
        return probe.reply_at

    def push(self, probe: UdpProbe, copies: int = 3) -> asyncio.Future[Reply]:
        """Ask for a push on the probe; the future holds the server's ``pushed``."""
        return self.dispatch.request({"op": "push_now", "probe": probe.hexid, "copies": copies})

    def drop(self, probe: UdpProbe, release: bool = True) -> None:
        if probe.task is not None and not probe.task.done():
            probe.task.cancel()
        if probe.sock is not None:
            probe.sock.close()
        self._by_hex.pop(probe.hexid, None)
        if release and probe.hexid:
            with contextlib.suppress(OSError, RuntimeError):
                self.control.send({"op": "release", "probe": probe.hexid})

    def close_all(self) -> None:
        for probe in list(self._by_hex.values()):
            self.drop(probe, release=False)

    def _datagram(self, probe: UdpProbe, msg: Datagram, at: float) -> None:
        if msg.kind is Kind.REPLY:
            probe.reply_at = at
            if probe.sock is not None:
                probe.sock.cookie = msg.cookie
            probe.replied.set()
        else:
            self.on_push(probe, at)

    # Control -----------------------------------------------------------------

    async def reader(self) -> None:
        await self.dispatch.read()

    def _news(self, msg: ServerMessage) -> None:
        if isinstance(msg, UdpSeen):
            self._seen(msg)

    def _seen(self, msg: UdpSeen) -> None:
        probe = self._by_hex.get(msg.probe)
        if probe is None:
            return
        if msg.observed is not None:
            probe.observed = msg.observed
            if self.nat is None and probe.sock is not None:
                self.nat = nat_facts(probe.sock.local_address, msg.observed)
        probe.seen.set()
