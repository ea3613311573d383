"""Speak once on a forgotten connection, as an application would, and watch.

The wait is bounded by a short TCP_USER_TIMEOUT on the socket and by an
asyncio deadline, so a black hole costs seconds, not the ~15 minutes the
kernel would otherwise retransmit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from probe.core.after_expiry import AfterObservation, AfterResult, classify
from probe.core.endings import Ending
from probe.core.evidence import FailureMode
from probe.errors import TargetError
from probe.net.client import ConnectionEnded, MessageConnection
from probe.net.sockopts import set_user_timeout

AFTER_ID = "after"
#: The longest the test waits on one connection, whatever the RTT.
MAX_WAIT_S = 10.0


#: How a connection that ended while we waited for the answer ended: a
#: silent drop is only ever seen here as the kernel giving up.
_ENDED_BY = {
    FailureMode.SILENT_DROP: Ending.TIMEOUT,
    FailureMode.RESET: Ending.RESET,
    FailureMode.CLOSED: Ending.CLOSED,
}


def lost_push_wait(grace_s: float, since_push_s: float) -> float:
    """How long to wait on a connection whose push was lost.

    The server's TCP retransmits that push with exponential backoff, so its
    next attempt comes at most about as long after the first send as has
    already passed; it carries the push (and then the answer) through a
    mapping the client's message re-created.
    """
    return min(MAX_WAIT_S, max(2 * grace_s, since_push_s + grace_s))


async def speak_after_expiry(
    conn: MessageConnection,
    wait_s: float,
    observed_before: str | None,
    clock: Callable[[], float] = time.monotonic,
    listen: Callable[[], float | None] | None = None,
    news: asyncio.Event | None = None,
) -> AfterResult:
    """Send one ping on ``conn`` and classify what comes back within ``wait_s``.

    ``listen``, where given, says how long (from the ping) is enough as far
    as is known now; it is asked again whenever ``news`` is set (a server
    report came), so a report that arrives while we listen ends the wait
    as soon as it says nothing more can come.
    """
    try:
        sock = conn.socket
    except (AttributeError, OSError):
        sock = None
    # The kernel gives up on our unacknowledged message by itself after this,
    # which tells a black hole apart from a slow answer.
    set_user_timeout(sock, wait_s)
    started = clock()
    deadline = started + wait_s
    answered, ended, late_push, observed_after = False, None, False, None
    try:
        conn.send({"op": "ping", "id": AFTER_ID})
    except (OSError, RuntimeError):
        ended = Ending.RESET
    recv: asyncio.Future[dict[str, Any]] | None = None
    woken: asyncio.Future[Any] | None = None
    try:
        while ended is None and not answered:
            if news is not None:
                news.clear()
            told = listen() if listen is not None else None
            left = min(deadline, started + told if told is not None else deadline) - clock()
            if left <= 0:
                break
            if recv is None:
                recv = asyncio.ensure_future(conn.recv())
            waiting: set[asyncio.Future[Any]] = {recv}
            if news is not None:
                if woken is None:
                    woken = asyncio.ensure_future(news.wait())
                waiting.add(woken)
            done, _ = await asyncio.wait(waiting, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            if woken is not None and woken in done:
                woken = None
            if recv not in done:
                continue
            arrived, recv = recv, None
            try:
                msg = arrived.result()
            except ConnectionEnded as exc:
                ended = Ending.TIMEOUT if exc.timed_out else _ENDED_BY[exc.mode]
                break
            except TargetError:
                # The server said error and closed: a close all the same.
                ended = Ending.CLOSED
                break
            op = msg.get("op")
            if op == "push":
                late_push = True
            elif op == "pong" and msg.get("id") == AFTER_ID:
                answered = True
                seen = msg.get("observed")
                observed_after = seen if isinstance(seen, str) else None
    finally:
        for pending in (recv, woken):
            if pending is not None:
                pending.cancel()
    return classify(
        AfterObservation(
            answered=answered,
            ended=ended,
            waited_s=clock() - started,
            observed_before=observed_before,
            observed_after=observed_after,
            late_push=late_push,
        )
    )
