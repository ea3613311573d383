"""How a held connection ended: the words ``hold``, ``check`` and the
after-expiry test report (``ended`` in their JSON)."""

from __future__ import annotations

from enum import StrEnum


class Ending(StrEnum):
    """String-valued: JSON and comparisons read the word itself."""

    #: It lasted the whole duration asked for (``hold`` only).
    DURATION = "duration"
    #: The kernel gave up on unacknowledged data or keepalive probes.
    TIMEOUT = "timeout"
    #: A RST, from the peer or a middlebox.
    RESET = "reset"
    #: A FIN or a WebSocket close, as a proxy's idle timeout sends.
    CLOSED = "closed"
    #: An application heartbeat went unanswered.
    HEARTBEAT_TIMEOUT = "heartbeat_timeout"
