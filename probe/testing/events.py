"""What a test NAT did, as records a test can read and wait for."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

#: The kinds of event, in the order they can happen to one flow.
KINDS = ("opened", "expired", "dropped", "reset", "closed")


@dataclass(frozen=True)
class NatEvent:
    #: "opened", "expired", "dropped" (data swallowed after expiry), "reset"
    #: or "closed" (the NAT reset or closed the flow when it expired).
    kind: str
    #: time.monotonic() when it happened.
    at: float
    #: The flow's number, from 1 in the order flows were opened.
    flow: int
    #: The client's address, as the NAT saw it.
    peer: tuple[str, int]
    #: Bytes swallowed ("dropped"); 0 for the other kinds.
    nbytes: int = 0


class EventLog:
    """Events appended by the NAT's thread, read and awaited by the test's."""

    def __init__(self) -> None:
        self._events: list[NatEvent] = []
        self._changed = threading.Condition()

    def add(self, kind: str, flow: int, peer: tuple[str, int], nbytes: int = 0) -> None:
        with self._changed:
            self._events.append(NatEvent(kind, time.monotonic(), flow, peer, nbytes))
            self._changed.notify_all()

    def snapshot(self) -> list[NatEvent]:
        with self._changed:
            return list(self._events)

    def wait_for(self, kind: str, timeout: float, flow: int | None = None, count: int = 1) -> NatEvent:
        """The ``count``-th event of ``kind`` (of ``flow``, if given), once it
        has happened; TimeoutError after ``timeout`` seconds without it."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")

        def matching() -> list[NatEvent]:
            return [e for e in self._events if e.kind == kind and (flow is None or e.flow == flow)]

        with self._changed:
            if not self._changed.wait_for(lambda: len(matching()) >= count, timeout):
                raise TimeoutError(f"no {kind!r} event within {timeout:g} s")
            return matching()[count - 1]
