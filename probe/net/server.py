"""The cooperating natprobe server.

Each connection is a :class:`Session`: protocol state that does not know
whether it runs over TCP lines or WebSocket messages. The TCP adapter is an
``asyncio.Protocol`` with loop timers rather than a task per connection, so
an idle session costs a few kilobytes and no scheduler work.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import logging
import secrets
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from probe import __version__
from probe.core.protocol import (
    VERSION,
    Ack,
    Beat,
    Hello,
    LineBuffer,
    Ping,
    ProtocolError,
    PushAfter,
    PushNow,
    Release,
    UdpOpen,
    decode,
    encode,
    validate_client,
)
from probe.core.targets import format_address
from probe.core.udp_table import ProbeTable, Refused, Report, UdpLimits
from probe.net.sockopts import set_user_timeout, tcp_info
from probe.net.udp_server import UdpListener, bind_udp, send_spaced

log = logging.getLogger("natprobe.server")


@dataclass(frozen=True)
class ServerConfig:
    max_idle_s: float = 7800.0
    token: str | None = None
    hello_timeout_s: float = 10.0
    #: A connection that sends part of a line and stops is closed after this.
    partial_line_timeout_s: float = 15.0
    max_sessions: int = 10_000
    max_per_ip: int = 256
    #: Connections that have sent nothing by the hello deadline (a ``hold``,
    #: which measures a silent connection) are kept, silent, up to these
    #: counts, inside the session limits above; others are closed.
    max_parked_per_ip: int = 4
    max_parked: int = 100
    max_rounds: int = 100_000
    #: At most this many rejected-client log lines per second.
    log_rate: float = 5.0
    #: TCP_USER_TIMEOUT on every session: a push the client's TCP never
    #: acknowledges frees its session after this long, instead of after the
    #: ~15 minutes of retransmissions the kernel does by default. It sends
    #: nothing on an idle connection (unlike keepalive, which would refresh
    #: the very NAT state under test). None leaves the kernel default.
    user_timeout_s: float | None = 30.0
    #: How long after a push the server looks whether the client's TCP has
    #: acknowledged it, and tells the run's control connection if not.
    ack_check_s: float = 1.0
    udp: UdpLimits = field(default_factory=UdpLimits)


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def ack_now(sock: Any) -> None:
    """Acknowledge received data at once instead of up to 40 ms later.

    The ACK is the last packet a middlebox sees before the idle period, and
    the idle this server reports is counted from the data it received: a
    delayed ACK would make every reported idle look longer than the path's.
    Linux clears TCP_QUICKACK by itself, so it is set after each read.
    """
    if _QUICKACK is not None and sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)


class _RateLimitedLog:
    """One line per rejected client, but never more than ``rate`` a second."""

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self._rate = rate
        self._clock = clock
        self._allowance = rate
        self._last = clock()
        self.suppressed = 0

    def warn(self, message: str) -> None:
        now = self._clock()
        self._allowance = min(self._rate, self._allowance + (now - self._last) * self._rate)
        self._last = now
        if self._allowance < 1.0:
            self.suppressed += 1
            return
        self._allowance -= 1.0
        if self.suppressed:
            message += f" ({self.suppressed} similar lines suppressed)"
            self.suppressed = 0
        log.warning(message)


class Link(Protocol):
    """What a session needs of its transport adapter: send a line, close."""

    def send_line(self, data: bytes) -> None: ...

    def close_link(self, code: str, message: str) -> None: ...


#: Close codes after which the connection is aborted (RST) rather than closed:
#: a test connection whose run ended is most likely behind a forgotten
#: mapping, where a FIN would be retransmitted into a black hole for minutes.
ABORT_CODES = frozenset({"run_ended", "released"})


class Session:
    """Protocol state of one client connection, independent of its transport."""

    __slots__ = (
        "__weakref__",
        "_link",
        "_push_id",
        "_push_timer",
        "_report",
        "_report_timer",
        "closed",
        "end_reason",
        "greeted",
        "id",
        "last_activity",
        "members",
        "owner",
        "parked",
        "peer",
        "rounds",
        "server",
        "sock",
        "spoke",
    )

    def __init__(
        self,
        server: ProbeServer,
        peer: tuple[str, int],
        link: Link,
        sock: Any = None,
    ) -> None:
        self.server = server
        self.id = ""
        # Interned: the sessions from one address (a NAT, an office) share it.
        self.peer = (sys.intern(peer[0]), peer[1])
        #: The transport adapter: one reference, not two bound methods per session.
        self._link: Link | None = link
        self.greeted = False
        self.last_activity = server.clock()
        self.rounds = 0
        self._push_id: str | None = None
        self._push_timer: asyncio.TimerHandle | None = None
        #: The last push and who to tell if it goes unacknowledged.
        self._report: tuple[str, Session] | None = None
        self._report_timer: asyncio.TimerHandle | None = None
        self.closed = False
        #: The socket under the session, for TCP_INFO (None where unknown).
        self.sock = sock
        #: How the transport ended: "reset", "timeout" or "closed".
        self.end_reason = ""
        #: The control session whose run this test connection belongs to.
        self.owner: Session | None = None
        #: For a control session: the test connections of its run.
        self.members: set[Session] | None = None
        #: Silent at the hello deadline and kept (see ``hello_overdue``).
        self.parked = False
        #: Sent a message other than ``beat``: a hold's heartbeats do not count.
        self.spoke = False

    # Called by the transport adapter.

    def on_message(self, raw: bytes) -> None:
        self.last_activity = self.server.clock()
        try:
            msg = validate_client(decode(raw), self.server.config.max_idle_s)
            if not isinstance(msg, Beat):
                self.spoke = True
            self._handle(msg)
        except ProtocolError as exc:
            self.spoke = True
            self.fail(exc.code, exc.message)

    def hello_overdue(self, pending: bool = False) -> None:
        """The hello deadline passed without a hello.

        A connection that has sent nothing, or only ``beat`` heartbeats, is
        what ``natprobe hold`` makes: it measures how long a quiet connection
        lives, so the server at the far end must not be what ends it. It is
        kept (parked), silent, within small quotas and the usual session
        limits, until it says anything else (then it has one more hello
        deadline) or ``--max-idle`` passes. Anything else, or past the
        quotas, is closed with the reason. ``pending``: half a line is waiting.
        """
        if self.greeted or self.closed or self.parked:
            return
        if not self.spoke and not pending and self.server.park(self):
            self.parked = True
            self._push_timer = asyncio.get_running_loop().call_later(
                self.server.config.max_idle_s, self.fail, "max_idle", "held without a hello for the server's --max-idle"
            )
            return
        self.fail("timeout", "no hello in time")

    def unpark(self) -> None:
        """A parked connection spoke: it is an ordinary newcomer again."""
        if self.parked:
            self.parked = False
            self._cancel_push()
            self.server.unpark(self)

    def on_closed(self) -> None:
        self.unpark()
        self.closed = True
        self._cancel_push()
        self.server._forget(self)
        if self.owner is not None and self.owner.members is not None:
            self.owner.members.discard(self)
        self.owner = None
        members, self.members = self.members, None
        if self.id:
            self.server.udp.drop_owner(self.id)
        # The run is over, however its control connection ended: free its
        # test connections now. Behind a forgotten mapping their own FIN or
        # RST never arrives, and they would be held until --max-idle.
        for member in list(members or ()):
            member.fail("run_ended", "the run's control connection ended", logged=True)
        # Drop the references to the transport adapter: that breaks the
        # session <-> adapter cycle, so reference counting frees both at once
        # and the cyclic GC never has to (see run/serve.py).
        self._link = None

    # Protocol.

    def _handle(self, msg: Any) -> None:
        if isinstance(msg, Hello):
            if self.greeted:
                raise ProtocolError("bad_state", "hello sent twice")
            if not self.server.authorized(msg.token):
                self.server.reject_log.warn(f"unauthorized client {format_address(*self.peer)}")
                self.fail("unauthorized", "missing or wrong token", logged=True)
                return
            if msg.run is not None:
                owner = self.server.sessions.get(msg.run)
                if owner is None or owner.closed or owner.owner is not None:
                    raise ProtocolError("bad_run", "no such run: its control connection is gone")
                self.owner = owner
                if owner.members is None:
                    owner.members = set()
                owner.members.add(self)
            self.unpark()  # a parked hold may still turn into a session
            self.greeted = True
            self.id = secrets.token_urlsafe(12)
            self.server._register(self)
            self.send(
                {
                    "op": "welcome",
                    "v": VERSION,
                    "observed": format_address(*self.peer),
                    "server": f"natprobe {__version__}",
                    "session": self.id,
                    "max_idle_s": self.server.config.max_idle_s,
                    "limits": self.server.limits_for(self.peer[0]),
                    "instance": self.server.instance,
                    "push_report_s": self.server.config.ack_check_s,
                    "udp": [port for _, port in self.server.udp_addresses],
                }
            )
            return
        if not self.greeted and isinstance(msg, Beat):
            # A hold with application heartbeats: answered, and no hello is
            # needed for it (see hello_overdue).
            self.send({"op": "beat_ack", "id": msg.id})
            return
        if not self.greeted:
            raise ProtocolError("bad_state", f"{type(msg).__name__.lower()} before hello")
        if isinstance(msg, PushAfter):
            self._count_round()
            self._cancel_push()
            self._push_id = msg.id
            self._push_timer = asyncio.get_running_loop().call_later(msg.idle_s, self._push_due)
        elif isinstance(msg, PushNow):
            self._count_round()
            if msg.probe is not None:
                self._push_udp(msg)
            else:
                self._push_now(msg)
        elif isinstance(msg, Ack):
            pass
        elif isinstance(msg, Ping):
            reply: dict[str, Any] = {"op": "pong"}
            if msg.id is not None:
                # The address seen now: after a NAT re-created a forgotten
                # mapping, the client compares it with the one in welcome.
                reply.update(id=msg.id, observed=format_address(*self.peer))
            self.send(reply)
        elif isinstance(msg, Beat):
            self.send({"op": "beat_ack", "id": msg.id})
        elif isinstance(msg, UdpOpen):
            self._open_udp(msg)
        elif isinstance(msg, Release) and msg.probe is not None:
            self.server.udp.release(self.id, bytes.fromhex(msg.probe))
        elif isinstance(msg, Release):
            member = self.server.sessions.get(msg.session)
            # Only the run that owns a connection may end it.
            if member is not None and member.owner is self:
                member.fail("released", "the run released this connection", logged=True)

    def _count_round(self) -> None:
        self.rounds += 1
        if self.rounds > self.server.config.max_rounds:
            raise ProtocolError("too_many_rounds", "too many rounds on one connection")

    def _cancel_push(self) -> None:
        if self._push_timer is not None:
            self._push_timer.cancel()
            self._push_timer = None

    def _push_due(self) -> None:
        self._push_timer = None
        push_id, self._push_id = self._push_id, None
        if push_id is not None and not self.closed:
            self.push(push_id, self.owner)

    def push(self, push_id: str, reporter: Session | None) -> float:
        """Send a push now; return the idle (s) it ended, as seen here.

        ``reporter`` (the run's control session) is told if the client's TCP
        has not acknowledged the push ``ack_check_s`` later.
        """
        idle = self.server.clock() - self.last_activity
        self.send({"op": "push", "id": push_id, "idle_s": round(idle, 4)})
        if reporter is not None:
            self._check_acked()  # an earlier push still pending is judged now
            self._report = (push_id, reporter)
            self._report_timer = asyncio.get_running_loop().call_later(
                self.server.config.ack_check_s, self._check_acked
            )
        return idle

    def _check_acked(self) -> None:
        """Tell ``reporter`` when this session's push was never acknowledged.

        From the server's side, a push into a forgotten flow either stays
        unacknowledged (retransmitted into a black hole) or meets a reset from
        the box that forgot it. Either is a witness, from the far end, of a
        silent drop the client only infers from silence.
        """
        if self._report_timer is not None:
            self._report_timer.cancel()
            self._report_timer = None
        pending, self._report = self._report, None
        if pending is None or pending[1].closed:
            return
        push_id, reporter = pending
        report: dict[str, Any] = {"op": "push_unacked", "id": push_id, "session": self.id}
        if self.closed:
            if self.end_reason not in ("reset", "timeout"):
                return
            report["ended"] = self.end_reason
        else:
            info = tcp_info(self.sock) if self.sock is not None else None
            if info is None or info["unacked"] == 0:
                return
            report.update(unacked=info["unacked"], retransmits=info["total_retrans"])
        reporter.send(report)

    def _push_now(self, msg: PushNow) -> None:
        target = self.server.sessions.get(msg.session)
        reply: dict[str, Any] = {"op": "pushed", "id": msg.id, "session": msg.session}
        if target is None or target.closed:
            reply.update(sent=False, reason="unknown_session")
        else:
            target._cancel_push()
            target._push_id = None
            reply.update(sent=True, idle_s=round(target.push(msg.id, target.owner or self), 4))
        self.send(reply)

    def _open_udp(self, msg: UdpOpen) -> None:
        reply: dict[str, Any] = {"op": "udp_probe", "id": msg.id}
        if not self.server.udp_addresses:
            reply.update(probe=None, reason="no_udp")
        else:
            try:
                probe = self.server.udp.open(self.id, self.peer[0], self.server.clock())
                reply["probe"] = probe.id.hex()
            except Refused as exc:
                reply.update(probe=None, reason=exc.reason)
        self.send(reply)

    def _push_udp(self, msg: PushNow) -> None:
        assert msg.probe is not None
        sends, fields = self.server.udp.push(
            self.id, bytes.fromhex(msg.probe), self.rounds, msg.copies, self.server.clock()
        )
        send_spaced(sends)
        self.send({"op": "pushed", "id": msg.id, "probe": msg.probe, **fields})

    def send(self, msg: dict[str, Any]) -> None:
        if self.closed:
            return
        self.last_activity = self.server.clock()
        if self._link is not None:
            self._link.send_line(encode(msg))

    def fail(self, code: str, message: str, logged: bool = False) -> None:
        """Tell the client what was wrong, then close."""
        if self.closed:
            return
        if not logged:
            self.server.reject_log.warn(f"rejected {format_address(*self.peer)}: {code}: {message}")
        if code in ABORT_CODES:
            # About to be dropped: judge a pending push while TCP_INFO can
            # still tell, so the run's count of lost pushes stays whole.
            self._check_acked()
        self.send({"op": "error", "code": code, "message": message})
        self.closed = True
        self._cancel_push()
        if self._link is not None:
            self._link.close_link(code, message)


class _TcpSession(asyncio.Protocol):
    """Newline-delimited JSON over a TCP stream."""

    __slots__ = ("_sock", "_timer", "buffer", "server", "session", "transport")

    def __init__(self, server: ProbeServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.buffer = LineBuffer()
        self._timer: asyncio.TimerHandle | None = None
        self._sock: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._sock = transport.get_extra_info("socket")
        set_user_timeout(self._sock, self.server.config.user_timeout_s)
        peer = transport.get_extra_info("peername") or ("?", 0)
        session = Session(self.server, (str(peer[0]), int(peer[1])), self, self._sock)
        self.session = session
        refusal = self.server.admit(session)
        if refusal is not None:
            session.fail("busy", refusal)
            return
        self._timer = asyncio.get_running_loop().call_later(self.server.config.hello_timeout_s, self._hello_timeout)

    def _hello_timeout(self) -> None:
        self._timer = None
        if self.session is not None:
            self.session.hello_overdue(pending=bool(self.buffer.pending))

    def _partial_timeout(self) -> None:
        self._timer = None
        if self.session is not None:
            self.session.fail("timeout", "incomplete line")

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is None or session.closed:
            return
        ack_now(self._sock)
        try:
            lines = self.buffer.feed(data)
        except ProtocolError as exc:
            session.fail(exc.code, exc.message)
            return
        for line in lines:
            session.on_message(line)
            if session.closed:
                return
        if session.parked and (session.spoke or self.buffer.pending):
            # It said more than a heartbeat: one more hello deadline.
            session.unpark()
            self._timer = asyncio.get_running_loop().call_later(self.server.config.hello_timeout_s, self._hello_timeout)
        self._arm_partial_timer(session)

    def _arm_partial_timer(self, session: Session) -> None:
        if not session.greeted:
            return  # the hello timer is still running
        if self.buffer.pending:
            if self._timer is None:
                timeout = self.server.config.partial_line_timeout_s
                self._timer = asyncio.get_running_loop().call_later(timeout, self._partial_timeout)
        elif self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def eof_received(self) -> bool:
        return False

    def send_line(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def close_link(self, code: str = "", message: str = "") -> None:
        if self.transport is not None:
            if code in ABORT_CODES:
                self.transport.abort()
            else:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.session is not None:
            self.session.end_reason = end_reason(exc)
            self.session.on_closed()
            self.session = None
        self.transport = None
        self._sock = None


def _count_down(counts: dict[str, int], ip: str) -> None:
    """One session fewer from ``ip``; addresses at zero leave the map."""
    left = counts.get(ip, 1) - 1
    if left:
        counts[ip] = left
    else:
        counts.pop(ip, None)


def end_reason(exc: BaseException | None) -> str:
    """How a transport ended, in the words of ``push_unacked`` reports."""
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, TimeoutError) or (isinstance(exc, OSError) and exc.errno == errno.ETIMEDOUT):
        return "timeout"
    return "closed"


class Listener(Protocol):
    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


class ProbeServer:
    """Listeners and the session registry."""

    def __init__(self, config: ServerConfig | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or ServerConfig()
        self.clock = clock
        self.sessions: dict[str, Session] = {}
        self.live: set[Session] = set()
        self.per_ip: dict[str, int] = {}
        self.parked_per_ip: dict[str, int] = {}
        self.parked = 0
        self.reject_log = _RateLimitedLog(self.config.log_rate, clock)
        self._servers: list[Listener] = []
        self.addresses: list[tuple[str, int]] = []
        self.udp = ProbeTable(self.config.udp)
        self.udp_addresses: list[tuple[str, int]] = []
        #: Names this process in welcome: clients reaching it on several ports
        #: or addresses (a survey) know their connections share its limits.
        self.instance = secrets.token_hex(8)

    def authorized(self, token: str | None) -> bool:
        expected = self.config.token
        if expected is None:
            return True
        return token is not None and hmac.compare_digest(token.encode(), expected.encode())

    def admit(self, session: Session) -> str | None:
        """Count a new connection; a reason to refuse it, or None."""
        ip = session.peer[0]
        if len(self.live) >= self.config.max_sessions:
            return "server is at its session limit"
        if self.per_ip.get(ip, 0) >= self.config.max_per_ip:
            return "too many sessions from this address"
        self.live.add(session)
        self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
        return None

    def limits_for(self, ip: str) -> dict[str, int]:
        """The limits a client from ``ip`` is held to, and what is left of them,
        so that a client can size its connection pool instead of failing."""
        cfg = self.config
        return {
            "max_sessions": cfg.max_sessions,
            "sessions_free": max(0, cfg.max_sessions - len(self.live)),
            "max_per_ip": cfg.max_per_ip,
            "per_ip_free": max(0, cfg.max_per_ip - self.per_ip.get(ip, 0)),
        }

    def park(self, session: Session) -> bool:
        """Count a parked connection; False when its quotas are full."""
        ip = session.peer[0]
        cfg = self.config
        if self.parked >= cfg.max_parked or self.parked_per_ip.get(ip, 0) >= cfg.max_parked_per_ip:
            return False
        self.parked += 1
        self.parked_per_ip[ip] = self.parked_per_ip.get(ip, 0) + 1
        return True

    def unpark(self, session: Session) -> None:
        self.parked -= 1
        _count_down(self.parked_per_ip, session.peer[0])

    def _register(self, session: Session) -> None:
        self.sessions[session.id] = session

    def _forget(self, session: Session) -> None:
        if session in self.live:
            self.live.discard(session)
            _count_down(self.per_ip, session.peer[0])
        if session.id and self.sessions.get(session.id) is session:
            del self.sessions[session.id]

    async def listen_tcp(self, host: str, port: int) -> tuple[str, int]:
        """Start a TCP listener; return the address it bound (port 0 picks one)."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _TcpSession(self), host, port, reuse_address=True, backlog=4096)
        self._servers.append(server)
        bound = server.sockets[0].getsockname()
        address = (str(bound[0]), int(bound[1]))
        self.addresses.append(address)
        return address

    async def listen_udp(self, host: str, port: int) -> tuple[str, int]:
        """Start a UDP listener; return the address it bound (port 0 picks one)."""
        sock = bind_udp(host, port)
        listener = UdpListener(sock, self.udp, self._deliver, self.clock)
        self._servers.append(listener)
        bound = sock.getsockname()
        address = (str(bound[0]), int(bound[1]))
        self.udp_addresses.append(address)
        return address

    def _deliver(self, report: Report) -> None:
        """A UDP probe's news, for the control session that owns it."""
        session = self.sessions.get(report.owner)
        if session is not None:
            session.send(report.message)

    def add_listener(self, server: Listener, address: tuple[str, int]) -> None:
        self._servers.append(server)
        self.addresses.append(address)

    async def shutdown(self, grace_s: float = 2.0) -> None:
        """Tell every session why, close them, and stop listening."""
        for session in list(self.live):
            session.fail("shutdown", "server is shutting down", logged=True)
        for server in self._servers:
            server.close()
        waits = [server.wait_closed() for server in self._servers]
        if waits:
            try:
                async with asyncio.timeout(grace_s):
                    await asyncio.gather(*waits)
            except TimeoutError:
                pass
