"""An expiring NAT in userspace, for an application's own tests: no root.

``ExpiringNat`` relays TCP (and so WebSocket) to an upstream and forgets a
flow that carried no data for ``idle_timeout`` seconds: ``drop`` swallows
what is sent after that, ``reset`` resets both sides, ``close`` closes them
(FIN). It is natprobe's emulator (probe/lab/emulator.py) on a thread of its
own. Like any proxy it terminates TCP, so kernel keepalive never crosses it:
use ``KernelNat`` to test keepalive.

``ExpiringUdpNat`` gives each client address its own binding, as a NAT does,
forgotten after ``idle_timeout`` (``stream_timeout`` once the flow is a
stream, as conntrack does); with ``inbound_refresh`` False only the client's
datagrams keep it.
"""

from __future__ import annotations

import ipaddress
import math
import socket
from types import TracebackType
from typing import Self

from probe.core.targets import format_address
from probe.lab.emulator import MODES, Emulator
from probe.lab.udp_nat import UdpNat, UdpTimers
from probe.testing.events import EventLog, NatEvent
from probe.testing.loop import LoopThread

Address = tuple[str, int]

#: How long the set-up check waits for the upstream to accept.
UPSTREAM_CHECK_S = 3.0


def positive_seconds(name: str, value: object) -> float:
    """``value`` as seconds, or ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


def address(name: str, value: object, lowest_port: int = 1) -> Address:
    """``value`` as a (host, port) tuple, or ValueError naming ``name``."""
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValueError(f"{name} must be a (host, port) tuple, not {value!r}")
    host, port = value
    if not isinstance(host, str) or not host:
        raise ValueError(f"{name}'s host must be a non-empty string, not {host!r}")
    if isinstance(port, bool) or not isinstance(port, int) or not lowest_port <= port < 65536:
        raise ValueError(f"{name}'s port must be a whole number from {lowest_port} to 65535, not {port!r}")
    return host, port


def _local_listener(upstream: Address) -> bool | None:
    """Whether a socket of this host listens at ``upstream``; None where the
    upstream is not on this host or its sockets cannot be read."""
    import psutil

    host, port = upstream
    try:
        ips = {str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
        mine = {a.address for addrs in psutil.net_if_addrs().values() for a in addrs}
        if not all(ipaddress.ip_address(ip).is_loopback or ip in mine for ip in ips):
            return None
        # A listening socket's laddr is always an (ip, port) pair; only raddr can be empty.
        listening = [
            (c.laddr.ip, c.laddr.port)
            for c in psutil.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and isinstance(c.laddr, tuple) and len(c.laddr) == 2
        ]
    except (OSError, ValueError, psutil.Error):
        return None
    return any(p == port and (ip in ips or ip in ("0.0.0.0", "::")) for ip, p in listening)


def _check_upstream(upstream: Address) -> None:
    # Refused now means refused for every flow later: say so at set-up, once,
    # instead of letting the test meet closed connections it cannot explain.
    # On this host the kernel's socket table tells, unseen by the upstream: a
    # test server that accepts one connection must get the application's,
    # not ours. Elsewhere only a connection can tell.
    reason = "nothing listens there"
    local = _local_listener(upstream)
    if local is True:
        return
    if local is None:
        try:
            with socket.create_connection(upstream, timeout=UPSTREAM_CHECK_S):
                return
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
    raise ConnectionError(
        f"the upstream {format_address(*upstream)} does not accept connections ({reason}): start it before the NAT"
    )


class _Running:
    """What both NATs share: a loop thread, an event log, an address."""

    _thread: LoopThread | None = None

    def __init__(self, listen: Address) -> None:
        self._listen = address("listen", listen, lowest_port=0)
        self._log = EventLog()
        self._address: Address | None = None

    @property
    def address(self) -> Address:
        """Where the application under test connects, instead of the upstream."""
        if self._address is None:
            raise RuntimeError("the NAT is not running: use it as a context manager or start() it")
        return self._address

    @property
    def host(self) -> str:
        return self.address[0]

    @property
    def port(self) -> int:
        return self.address[1]

    def url(self, scheme: str, path: str = "/") -> str:
        """``scheme://host:port/path`` through the NAT, e.g. ``url("ws", "/chat")``."""
        if not path.startswith("/"):
            path = "/" + path
        return f"{scheme}://{format_address(*self.address)}{path}"

    @property
    def events(self) -> list[NatEvent]:
        """What happened so far, oldest first (a copy)."""
        return self._log.snapshot()

    def wait_for(self, kind: str, timeout: float = 10.0, flow: int | None = None, count: int = 1) -> NatEvent:
        """Block until the ``count``-th event of ``kind`` has happened (TimeoutError if not within ``timeout``)."""
        return self._log.wait_for(kind, timeout, flow, count)

    def _loop(self) -> LoopThread:
        if self._thread is None:
            raise RuntimeError("the NAT is not running: use it as a context manager or start() it")
        return self._thread

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    #: The loop thread's name, which says whose it is in a thread dump.
    _thread_name = "natprobe-nat"

    def _check(self) -> None:
        """What must hold before starting (nothing, unless a NAT says)."""

    async def _open(self) -> Address:
        """Build the middlebox on the loop's thread; where it listens."""
        raise NotImplementedError

    async def _shut(self) -> None:
        """End the middlebox, on the loop's thread."""
        raise NotImplementedError

    def start(self) -> Self:
        if self._thread is not None:
            return self
        self._check()
        self._thread = LoopThread(self._thread_name)
        try:
            self._address = self._thread.run(self._open)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop listening, end every flow and the thread. Safe to call twice."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        try:
            thread.run(self._shut)
        finally:
            thread.stop()


class ExpiringNat(_Running):
    """A TCP relay that forgets idle flows (see the module's text)."""

    def __init__(
        self,
        upstream: Address,
        idle_timeout: float = 5,
        mode: str = "drop",
        *,
        listen: Address = ("127.0.0.1", 0),
        check_upstream: bool = True,
    ) -> None:
        super().__init__(listen)
        self.upstream = address("upstream", upstream)
        self._idle_timeout = positive_seconds("idle_timeout", idle_timeout)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(repr(m) for m in MODES)}, not {mode!r}")
        self.mode = mode
        self._check_upstream = check_upstream
        self._emulator: Emulator | None = None

    @property
    def idle_timeout(self) -> float:
        return self._idle_timeout

    _thread_name = "natprobe-expiring-nat"

    def _check(self) -> None:
        if self._check_upstream:
            _check_upstream(self.upstream)

    async def _open(self) -> Address:
        self._emulator = Emulator(self.upstream, self._idle_timeout, self.mode, observer=self._log.add)
        return await self._emulator.listen(*self._listen)

    async def _shut(self) -> None:
        emulator, self._emulator = self._emulator, None
        if emulator is not None:
            await emulator.close()

    def forget_all(self) -> int:
        """Forget every live flow now, as if each had been idle too long; how many."""
        loop, emulator = self._loop(), self._emulator
        assert emulator is not None
        return loop.call(emulator.forget_all)

    def set_idle_timeout(self, seconds: float) -> None:
        """Change the timeout for every flow, live ones included."""
        value = positive_seconds("idle_timeout", seconds)
        loop, emulator = self._loop(), self._emulator
        assert emulator is not None
        loop.call(lambda: emulator.set_idle_timeout(value))
        self._idle_timeout = value


class ExpiringUdpNat(_Running):
    """A UDP NAT whose bindings expire (see the module's text)."""

    def __init__(
        self,
        upstream: Address,
        idle_timeout: float = 30,
        inbound_refresh: bool = True,
        *,
        stream_timeout: float | None = None,
        listen: Address = ("127.0.0.1", 0),
    ) -> None:
        super().__init__(listen)
        self.upstream = address("upstream", upstream)
        unreplied = positive_seconds("idle_timeout", idle_timeout)
        stream = unreplied if stream_timeout is None else positive_seconds("stream_timeout", stream_timeout)
        if not isinstance(inbound_refresh, bool):
            raise ValueError(f"inbound_refresh must be True or False, not {inbound_refresh!r}")
        self._timers = UdpTimers(unreplied, stream, inbound_refresh)
        self._nat: UdpNat | None = None

    @property
    def idle_timeout(self) -> float:
        return self._timers.unreplied_s

    @property
    def inbound_refresh(self) -> bool:
        return self._timers.inbound_refresh

    _thread_name = "natprobe-expiring-udp-nat"

    async def _open(self) -> Address:
        self._nat = UdpNat(self.upstream, self._timers, observer=self._log.add)
        return await self._nat.listen(*self._listen)

    async def _shut(self) -> None:
        nat, self._nat = self._nat, None
        if nat is not None:
            nat.close()

    def forget_all(self) -> int:
        """Forget every binding now; the next datagram out opens a new one, on a new port."""
        loop, nat = self._loop(), self._nat
        assert nat is not None
        return loop.call(nat.forget_all)

    def set_idle_timeout(self, seconds: float, stream_timeout: float | None = None) -> None:
        """New timers for every binding, live ones included."""
        unreplied = positive_seconds("idle_timeout", seconds)
        stream = unreplied if stream_timeout is None else positive_seconds("stream_timeout", stream_timeout)
        timers = UdpTimers(unreplied, stream, self._timers.inbound_refresh)
        loop, nat = self._loop(), self._nat
        assert nat is not None
        loop.call(lambda: nat.set_timers(timers))
        self._timers = timers
