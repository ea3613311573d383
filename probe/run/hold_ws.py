"""``hold ws(s)://``: hold a WebSocket session to any server and see how it ends."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from websockets.exceptions import ConnectionClosed

from probe.core.endings import Ending
from probe.core.heartbeat import Heartbeat, HeartbeatConfig
from probe.core.protocol import REASON_PREFIX
from probe.net.dial import Reaching, dial_ws
from probe.net.ws_client import ws_ended
from probe.run.heartbeats import HeartbeatSender

#: Sessions that die within this fraction of each other's age, with their
#: heartbeats answered, look like a lifetime cap rather than an idle timeout.
CAP_SPREAD = 0.10


@dataclass(frozen=True)
class WsHoldOptions(Reaching):
    """``endpoint``: any WebSocket server (a ws:// or wss:// target)."""

    duration_s: float
    heartbeat: HeartbeatConfig | None = None
    heartbeat_message: str = "ping"
    repeat: int = 1


@dataclass
class WsSession:
    alive_s: float
    ended: Ending
    detail: str
    close_code: int | None
    close_reason: str | None
    messages_received: int
    heartbeat: dict[str, Any] | None
    #: The handshake's Server header or the close reason named natprobe.
    natprobe_server: bool = False

    @property
    def heartbeats_answered(self) -> bool:
        hb = self.heartbeat
        return hb is not None and hb["answered"] > 0 and hb["missed"] == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "alive_s": round(self.alive_s, 3),
            "ended": self.ended,
            "detail": self.detail,
            "close_code": self.close_code,
            "close_reason": self.close_reason,
            "messages_received": self.messages_received,
            "heartbeat": self.heartbeat,
            "natprobe_server": self.natprobe_server,
        }


def lifetime_cap(sessions: list[WsSession]) -> float | None:
    """The common age at which sessions died despite answered heartbeats, if any."""
    died = [s for s in sessions if s.ended in (Ending.CLOSED, Ending.RESET) and s.heartbeats_answered]
    if len(died) < 2 or len(died) != len(sessions):
        return None
    ages = [s.alive_s for s in died]
    middle = statistics.median(ages)
    if max(ages) - min(ages) <= max(CAP_SPREAD * middle, 1.0):
        return middle
    return None


@dataclass
class WsHoldResult:
    options: WsHoldOptions
    sessions: list[WsSession]

    @property
    def lasted(self) -> bool:
        return all(s.ended is Ending.DURATION for s in self.sessions)

    def to_json(self) -> dict[str, Any]:
        first = self.sessions[0]
        cap = lifetime_cap(self.sessions)
        hb = self.options.heartbeat
        return {
            "schema": "natprobe.hold/1",
            "target": str(self.options.endpoint.target),
            "transport": "ws",
            "proxy": self.options.proxy,
            "duration_s": self.options.duration_s,
            **first.to_json(),
            "lasted": self.lasted,
            "heartbeat_config": None
            if hb is None
            else {"interval_s": hb.interval_s, "kind": hb.kind, "mode": hb.mode, "timeout_s": hb.answer_timeout_s},
            "sessions": [s.to_json() for s in self.sessions],
            "lifetime_cap_s": None if cap is None else round(cap, 3),
            "note": None
            if cap is None
            else (
                f"every session died at about {cap:.1f}s although its heartbeats were answered: "
                "a lifetime cap on connections, not an idle timeout; heartbeats cannot fix it, reconnect before it"
            ),
        }


async def _one_session(options: WsHoldOptions, clock: Callable[[], float]) -> WsSession:
    ws = await dial_ws(options.endpoint)
    response = ws.response
    natprobe = response is not None and response.headers.get("Server", "").split("/")[0] == "natprobe"
    started = clock()
    deadline = started + options.duration_s
    beat = Heartbeat(options.heartbeat, started=started) if options.heartbeat is not None else None
    received = 0
    ended, detail, code, reason = Ending.DURATION, f"lasted {options.duration_s:g}s", None, None

    async def ping() -> float:
        waiter = await ws.ping()
        return await waiter

    async def send_beat(number: int) -> None:
        await ws.send(options.heartbeat_message)

    sender = HeartbeatSender(beat, clock, send_beat, ping) if beat is not None else None

    try:
        while True:
            now = clock()
            if now >= deadline:
                break
            wake = deadline if beat is None else min(deadline, beat.next_wakeup())
            try:
                async with asyncio.timeout(max(0.0, wake - now)):
                    await ws.recv()
            except TimeoutError:
                now = clock()
                if beat is None or sender is None or now >= deadline:
                    continue
                if beat.timed_out(now):
                    ended, detail = Ending.HEARTBEAT_TIMEOUT, "a heartbeat went unanswered"
                    break
                if now >= beat.due():
                    await sender.send()
                continue
            except ConnectionClosed as exc:
                end = ws_ended(exc)
                ended = Ending.RESET if end.mode.value == "reset" else Ending.CLOSED
                detail, code, reason = str(end), end.close_code, end.close_reason
                if reason and reason.startswith(REASON_PREFIX):
                    natprobe = True
                    detail = f"the far end is a natprobe server; it closed with {code}: {reason[len(REASON_PREFIX) :]}"
                    if options.heartbeat is not None and options.heartbeat.kind == "message":
                        detail += ' (it answers heartbeat messages like {"op":"beat","id":"1"})'
                break
            received += 1
            if beat is not None:
                # With kind "message", any message after a heartbeat answers it.
                if beat.config.kind == "message" and beat.outstanding:
                    beat.answered(clock())
                else:
                    beat.traffic(clock())
        alive = clock() - started
    finally:
        if sender is not None:
            sender.cancel()
        ws.transport.abort()
    return WsSession(
        alive_s=min(alive, options.duration_s) if ended is Ending.DURATION else alive,
        ended=ended,
        detail=detail,
        close_code=code,
        close_reason=reason,
        messages_received=received,
        heartbeat=None if beat is None else beat.stats(),
        natprobe_server=natprobe,
    )


async def run_hold_ws(options: WsHoldOptions, clock: Callable[[], float] = time.monotonic) -> WsHoldResult:
    sessions = [await _one_session(options, clock) for _ in range(options.repeat)]
    return WsHoldResult(options, sessions)
