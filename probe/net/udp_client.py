"""A UDP probe socket: one fresh source port, so one NAT binding of its own.

Each probe gets its own socket, so no probe's traffic touches another's
binding (a reused socket would change the very state under test).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

from probe.core.targets import format_address
from probe.core.udp_wire import CLIENT_SIZE, NO_COOKIE, Datagram, Kind, parse_server
from probe.errors import TargetError
from probe.net.client import describe_connect_error

#: Called with each well-formed server datagram and the time it arrived.
OnDatagram = Callable[[Datagram, float], None]


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: OnDatagram, clock: Callable[[], float]) -> None:
        self.on_datagram = on_datagram
        self.clock = clock

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        msg = parse_server(data)
        if msg is not None:
            self.on_datagram(msg, self.clock())

    def error_received(self, exc: Exception) -> None:
        # ICMP unreachable for an earlier datagram: the server's own grace
        # and the control connection's report tell the outcome.
        pass


class UdpProbeSocket:
    """A connected UDP socket that sends natprobe client datagrams for one probe."""

    def __init__(self, transport: asyncio.DatagramTransport, probe: bytes) -> None:
        self.transport = transport
        self.probe = probe
        self.seq = 0
        #: The cookie of the latest reply, echoed to validate our address.
        self.cookie = NO_COOKIE
        #: When this side last sent (its binding's idle period began then,
        #: at the latest).
        self.sent_at: float | None = None

    @classmethod
    async def open(
        cls, host: str, port: int, probe: bytes, on_datagram: OnDatagram, clock: Callable[[], float]
    ) -> UdpProbeSocket:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Receiver(on_datagram, clock), remote_addr=(host, port)
            )
        except OSError as exc:
            raise TargetError(describe_connect_error(exc, f"udp {host}:{port}")) from None
        return cls(transport, probe)

    @property
    def local_address(self) -> str:
        sock: socket.socket = self.transport.get_extra_info("socket")
        host, port = sock.getsockname()[:2]
        return format_address(str(host), int(port))

    def send(self, kind: Kind, now: float) -> None:
        self.seq += 1
        data = Datagram(kind, self.probe, self.seq, self.cookie).encode(CLIENT_SIZE)
        with contextlib.suppress(OSError):
            self.transport.sendto(data)
        self.sent_at = now

    def close(self) -> None:
        self.transport.close()
