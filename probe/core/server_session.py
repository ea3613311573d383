"""One client connection's protocol state, sans-I/O (docs/protocol.md).

A :class:`Session` does not know whether it runs over TCP lines or WebSocket
messages: its :class:`Link` sends and closes, and tells what the kernel
knows of unacknowledged data (TCP_INFO). Its timers (the parked hold's
``--max-idle``, ``push_after``, the check that a push was acknowledged) are
the registry's ``call_later``, so a test steps a session in virtual time.
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass
from typing import Any, Protocol

from probe.core.protocol import (
    FEATURES,
    VERSION,
    Ack,
    Beat,
    Hello,
    Ping,
    ProtocolError,
    PushAfter,
    PushNow,
    Release,
    Tick,
    UdpOpen,
    decode,
    encode,
    validate_client,
)
from probe.core.server_registry import Registry, TimerHandle
from probe.core.targets import format_address
from probe.core.udp_table import Refused


@dataclass(frozen=True)
class Unacked:
    """What the kernel knows of data the client has not acknowledged (TCP_INFO)."""

    segments: int
    retransmits: int
    #: The retransmission timeout now (doubled after each retransmission).
    rto_s: float
    #: Since data last went out: the next retransmission is ``rto_s`` after it.
    since_sent_s: float


class Link(Protocol):
    """What a session needs of its transport adapter: send a line, close, and
    what the kernel knows of data the client has not acknowledged."""

    def send_line(self, data: bytes) -> None: ...

    def close_link(self, code: str, message: str) -> None: ...

    def unacked(self) -> Unacked | None:
        """None where the transport cannot tell (not TCP, or not Linux)."""
        ...

    def set_keepalive(self, seconds: int) -> bool:
        """Turn on kernel keepalive (idle and interval ``seconds``); False where it cannot."""
        ...


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
        "_tick",
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
        "spoke",
    )

    def __init__(
        self,
        server: Registry,
        peer: tuple[str, int],
        link: Link,
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
        self._push_timer: TimerHandle | None = None
        #: The last push and who to tell if it goes unacknowledged.
        self._report: tuple[str, Session] | None = None
        self._report_timer: TimerHandle | None = None
        #: A design connection's one-way ticks: (every, the next one's timer).
        self._tick: tuple[float, TimerHandle] | None = None
        self.closed = False
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
            self._push_timer = self.server.call_later(
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
        self._stop_ticks()
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
            welcome: dict[str, Any] = {}
            if msg.keepalive_s is not None:
                link = self._link
                welcome["keepalive_s"] = (
                    msg.keepalive_s if link is not None and link.set_keepalive(msg.keepalive_s) else None
                )
            if msg.tick_every_s is not None:
                welcome["tick_every_s"] = msg.tick_every_s
                self._tick = (msg.tick_every_s, self.server.call_later(msg.tick_every_s, self._send_tick))
            self.send(
                {
                    "op": "welcome",
                    "v": VERSION,
                    "observed": format_address(*self.peer),
                    "server": self.server.server_name,
                    "session": self.id,
                    "max_idle_s": self.server.config.max_idle_s,
                    "limits": self.server.limits_for(self.peer[0]),
                    "instance": self.server.instance,
                    "push_report_s": self.server.config.ack_check_s,
                    "udp": [port for _, port in self.server.udp_addresses],
                    "features": FEATURES,
                    **welcome,
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
            self._push_timer = self.server.call_later(msg.idle_s, self._push_due)
        elif isinstance(msg, PushNow):
            self._count_round()
            if msg.probe is not None:
                self._push_udp(msg)
            else:
                self._push_now(msg)
        elif isinstance(msg, Ack | Tick):
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

    def _send_tick(self) -> None:
        if self._tick is None or self.closed:
            return
        every = self._tick[0]
        self.send({"op": "tick"})
        self._tick = (every, self.server.call_later(every, self._send_tick))

    def _stop_ticks(self) -> None:
        if self._tick is not None:
            self._tick[1].cancel()
            self._tick = None

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
            self._report_timer = self.server.call_later(self.server.config.ack_check_s, self._check_acked)
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
            info = self._link.unacked() if self._link is not None else None
            if info is None or info.segments == 0:
                return
            # When the push goes out again: a client that re-creates the
            # flow knows how long to wait for it instead of guessing.
            retransmit_in = max(0.0, info.rto_s - info.since_sent_s)
            report.update(
                unacked=info.segments, retransmits=info.retransmits, rto_s=round(info.rto_s, 4),
                retransmit_in_s=round(retransmit_in, 4),
            )  # fmt: skip
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
        self.server.send_udp(sends)
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
        self._stop_ticks()
        if self._link is not None:
            self._link.close_link(code, message)
