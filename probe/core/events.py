"""The events a discovery reports as it runs (``--ndjson``, the live view).

One JSON object a line, ``{"event": NAME, "t": seconds since the start, ...}``;
the shape of each is ``natprobe.events/1`` (probe/schemas/events.schema.json,
docs/schemas.md). A survey adds ``path`` and ``family`` to each.
"""

from __future__ import annotations

from enum import StrEnum


class Event(StrEnum):
    #: The control connection is up and the RTT measured.
    START = "start"
    #: A push was asked for on an idle connection.
    PROBE = "probe"
    #: An idle test ended (a discover result's ``probes`` entry).
    TEST = "test"
    #: A flow state's planner finished.
    FINISH = "finish"
    #: What a forgotten flow did when spoken on (the result's ``after_expiry``).
    AFTER_EXPIRY = "after_expiry"
    #: UDP: whether the server's traffic alone refreshed a binding.
    INBOUND_REFRESH = "inbound_refresh"
    #: The discover result, last.
    RESULT = "result"
