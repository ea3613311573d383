"""The server's UDP socket: moves datagrams between the kernel and the probe table.

All decisions (who is answered, how much may be sent) are in
probe/core/udp_table.py; this module only reads, sends and spaces push copies.
A wildcard bind reads each datagram's destination address (IP_PKTINFO) and
answers from that same address, so a multi-homed server does not answer from
an address the client's NAT has no binding for.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
import sys
from collections.abc import Callable

from probe.core.udp_table import ProbeTable, Report, Send
from probe.core.udp_wire import MAX_DATAGRAM

# Python 3.11 lacks the constant; it is 8 on Linux.
_IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8 if sys.platform.startswith("linux") else None)
_IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", None)
_IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", None)
#: Datagrams read per wake-up before yielding to the rest of the loop.
_READ_BATCH = 64
#: Copies of a push leave this far apart: a burst lost together tells nothing.
COPY_GAP_S = 0.01


class UdpListener:
    """One bound UDP socket feeding a shared :class:`ProbeTable`."""

    def __init__(
        self,
        sock: socket.socket,
        table: ProbeTable,
        deliver: Callable[[Report], None],
        clock: Callable[[], float],
    ) -> None:
        self.sock = sock
        self.table = table
        self.deliver = deliver
        self.clock = clock
        self.family = sock.family
        self.pktinfo = False
        self._closed = asyncio.Event()
        bound = sock.getsockname()
        if ipaddress.ip_address(bound[0]).is_unspecified:
            self.pktinfo = self._enable_pktinfo()
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def _enable_pktinfo(self) -> bool:
        try:
            if self.family == socket.AF_INET6 and _IPV6_RECVPKTINFO is not None:
                self.sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVPKTINFO, 1)
                return True
            if self.family == socket.AF_INET and _IP_PKTINFO is not None:
                self.sock.setsockopt(socket.IPPROTO_IP, _IP_PKTINFO, 1)
                return True
        except OSError:
            pass
        return False

    def _readable(self) -> None:
        for _ in range(_READ_BATCH):
            try:
                data, ancdata, _flags, addr = self.sock.recvmsg(MAX_DATAGRAM + 1, 256 if self.pktinfo else 0)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # ICMP errors for earlier sends surface here; nothing to do.
                continue
            local = self._destination(ancdata)
            sends, report = self.table.datagram(data, (str(addr[0]), int(addr[1])), self.clock(), via=(self, local))
            for send in sends:
                self.send(send)
            if report is not None:
                self.deliver(report)

    def _destination(self, ancdata: list[tuple[int, int, bytes]]) -> bytes | None:
        """The packed local address a datagram was sent to, from its pktinfo."""
        for level, kind, data in ancdata:
            if level == socket.IPPROTO_IP and kind == _IP_PKTINFO and len(data) >= 12:
                return data[8:12]  # struct in_pktinfo: ifindex, spec_dst, addr
            if level == socket.IPPROTO_IPV6 and kind == _IPV6_PKTINFO and len(data) >= 16:
                return data[:16]  # struct in6_pktinfo: addr, ifindex
        return None

    def send(self, send: Send) -> None:
        local = send.via[1] if isinstance(send.via, tuple) else None
        anc: list[tuple[int, int, bytes]] = []
        if local is not None and self.family == socket.AF_INET and _IP_PKTINFO is not None:
            anc = [(socket.IPPROTO_IP, _IP_PKTINFO, struct.pack("=I4s4s", 0, local, bytes(4)))]
        elif local is not None and _IPV6_PKTINFO is not None:
            anc = [(socket.IPPROTO_IPV6, _IPV6_PKTINFO, struct.pack("=16sI", local, 0))]
        with contextlib.suppress(OSError):
            # A full buffer or an unreachable address costs one datagram,
            # which is what the copies and the client's grace are for.
            self.sock.sendmsg([send.data], anc, 0, send.addr)

    def close(self) -> None:
        if not self._closed.is_set():
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
            self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()


def send_spaced(sends: list[Send]) -> None:
    """Send the first copy now and the others ``COPY_GAP_S`` apart."""
    loop = asyncio.get_running_loop()
    for n, send in enumerate(sends):
        listener = send.via[0] if isinstance(send.via, tuple) else None
        if not isinstance(listener, UdpListener):
            continue
        if n == 0:
            listener.send(send)
        else:
            loop.call_later(n * COPY_GAP_S, listener.send, send)


def bind_udp(host: str, port: int) -> socket.socket:
    """A non-blocking UDP socket bound to ``host:port`` (port 0 picks one)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
