"""``hold ws(s)://``: hold a WebSocket session to any server and see how it ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from websockets.exceptions import ConnectionClosed

from probe.core.endings import Ending
from probe.core.heartbeat import Heartbeat, HeartbeatConfig, settings
from probe.core.hold import HoldResult, WsSession, ws_hold
from probe.core.protocol import REASON_PREFIX
from probe.net.dial import Reaching, dial_ws
from probe.net.ws_client import ws_ended
from probe.run.heartbeats import HeartbeatSender


@dataclass(frozen=True)
class WsHoldOptions(Reaching):
    """``endpoint``: any WebSocket server (a ws:// or wss:// target)."""

    duration_s: float
    heartbeat: HeartbeatConfig | None = None
    heartbeat_message: str = "ping"
    repeat: int = 1


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
        alive_s=round(min(alive, options.duration_s) if ended is Ending.DURATION else alive, 3),
        ended=ended,
        detail=detail,
        close_code=code,
        close_reason=reason,
        messages_received=received,
        heartbeat=None if beat is None else beat.stats(),
        natprobe_server=natprobe,
    )


async def run_hold_ws(options: WsHoldOptions, clock: Callable[[], float] = time.monotonic) -> HoldResult:
    sessions = [await _one_session(options, clock) for _ in range(options.repeat)]
    first, beat = sessions[0], options.heartbeat
    return HoldResult(
        target=str(options.endpoint.target),
        transport="ws",
        proxy=options.proxy,
        duration_s=options.duration_s,
        alive_s=first.alive_s,
        ended=first.ended,
        detail=first.detail,
        lasted=all(s.ended is Ending.DURATION for s in sessions),
        natprobe_server=first.natprobe_server,
        ws=ws_hold(sessions, None if beat is None else settings(beat)),
    )
