"""The after-expiry test listens as long as the server's report says is
enough: a report that comes while it listens ends the wait."""

from __future__ import annotations

import asyncio
from typing import Any

from probe.run.after_expiry import speak_after_expiry


class Silent:
    """A connection into a black hole: what is sent vanishes, nothing comes."""

    where = "198.18.0.2:4040"

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    @property
    def socket(self) -> Any:
        raise AttributeError("no socket")

    def send(self, *msgs: dict[str, Any]) -> None:
        self.sent.extend(msgs)

    async def recv(self) -> dict[str, Any]:
        await asyncio.Event().wait()  # never
        raise AssertionError("unreachable")


def test_a_report_while_listening_shortens_the_wait() -> None:
    told: list[float] = []

    async def body() -> tuple[float, Silent]:
        conn = Silent()
        news = asyncio.Event()

        async def report() -> None:
            await asyncio.sleep(0)  # once the ping is out
            told.append(0.0)  # the server said: nothing more will come
            news.set()

        reporter = asyncio.create_task(report())
        result = await speak_after_expiry(
            conn,
            30.0,
            None,
            listen=lambda: told[0] if told else None,
            news=news,  # type: ignore[arg-type]
        )
        await reporter
        return result.waited_s or 0.0, conn

    waited, conn = asyncio.run(body())
    assert conn.sent == [{"op": "ping", "id": "after"}]
    # Ended by the report, not by the 30 s bound.
    assert told and waited < 30.0


def test_without_news_the_bound_holds() -> None:
    async def body() -> float:
        result = await speak_after_expiry(Silent(), 0.05, None)  # type: ignore[arg-type]
        return result.waited_s or 0.0

    assert asyncio.run(body()) >= 0.05
