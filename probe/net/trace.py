"""An unprivileged path trace: TCP SYNs with a limited TTL (Linux).

A non-blocking connect() with ``IP_TTL = k`` and ``IP_RECVERR`` gets the
router's ICMP time-exceeded on its error queue while in SYN_SENT, with the
router's address, the way tracepath does for UDP. The destination port is the
one the test uses, so load balancing on the path sees the same flow. Hops that
do not answer are reported with no address; the hop number stays valid.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from probe.errors import UsageError

#: struct sock_extended_err: errno, origin, type, code, pad, info, data.
_EXTENDED_ERR = struct.Struct("=IBBBBII")
_IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
_IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)


@dataclass(frozen=True)
class Hop:
    ttl: int
    #: The router that answered, or the destination; None when silent.
    address: str | None
    rtt_s: float | None
    #: The SYN reached the destination (it answered SYN-ACK or RST).
    reached: bool = False


def supported() -> str | None:
    """Why tracing cannot work on this system, or None."""
    if sys.platform != "linux":
        return f"locate needs Linux's IP_RECVERR error queue; this system is {sys.platform}"
    return None


def _offender(cmsg_data: bytes, family: int) -> str | None:
    """The address after the extended error: who sent the ICMP."""
    rest = cmsg_data[_EXTENDED_ERR.size :]
    with contextlib.suppress(OSError, ValueError, IndexError):
        if family == socket.AF_INET and len(rest) >= 8:
            return socket.inet_ntop(socket.AF_INET, rest[4:8])
        if family == socket.AF_INET6 and len(rest) >= 24:
            return socket.inet_ntop(socket.AF_INET6, rest[8:24])
    return None


def probe_hop(address: str, port: int, ttl: int, timeout_s: float = 2.0) -> Hop:
    """Send one SYN with this TTL; who answers, and after how long."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family == socket.AF_INET:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
            level, kind = socket.IPPROTO_IP, _IP_RECVERR
        else:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
            sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
            level, kind = socket.IPPROTO_IPV6, _IPV6_RECVERR
        sock.setblocking(False)
        started = time.monotonic()
        code = sock.connect_ex((address, port))
        if code not in (0, errno.EINPROGRESS):
            raise UsageError(f"cannot trace to {address}:{port}: {errno.errorcode.get(code, code)}")
        poller = select.poll()
        poller.register(sock, select.POLLOUT | select.POLLERR)
        if not poller.poll(int(timeout_s * 1000)):
            return Hop(ttl, None, None)
        rtt = time.monotonic() - started
        with contextlib.suppress(BlockingIOError, InterruptedError):
            _, ancillary, _, _ = sock.recvmsg(512, 512, socket.MSG_ERRQUEUE)
            for cmsg_level, cmsg_type, data in ancillary:
                if (cmsg_level, cmsg_type) != (level, kind) or len(data) < _EXTENDED_ERR.size:
                    continue
                # Time exceeded names the hop; any other ICMP error (an
                # unreachable) names where the path ends. Either way, the
                # sender is the hop at this TTL.
                return Hop(ttl, _offender(data, family), rtt)
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error in (0, errno.ECONNREFUSED):
            # SYN-ACK (or RST): the SYN got there.
            return Hop(ttl, address, rtt, reached=True)
        return Hop(ttl, None, rtt)
    finally:
        sock.close()


#: A silent hop is asked this many times in all, this far apart: routers rate
#: limit their ICMP (Linux: about one a second per destination, burst 6), so
#: one lost answer says little.
TRIES = 3
RETRY_SPACING_S = 1.0


def trace(
    address: str, port: int, max_hops: int = 16, timeout_s: float = 2.0, tries: int = TRIES,
    spacing_s: float = RETRY_SPACING_S, sleep: Callable[[float], None] = time.sleep,
) -> list[Hop]:  # fmt: skip
    """Hops 1, 2, ... until the destination answers or ``max_hops``."""
    hops: list[Hop] = []
    for ttl in range(1, max_hops + 1):
        hop = probe_hop(address, port, ttl, timeout_s)
        for _ in range(tries - 1):
            if hop.address is not None or hop.reached:
                break
            sleep(spacing_s)
            hop = probe_hop(address, port, ttl, timeout_s)
        hops.append(hop)
        if hop.reached:
            break
    return hops
