"""Kernel keepalive as asked for and as the kernel holds it (pure data).

Applying it to a socket is probe/net/sockopts.py's: the options differ per OS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from probe.core.model import omitted_when_none


@dataclass(frozen=True)
class KeepaliveSettings:
    """(schema: ``keepalive``) What was asked for; None: the kernel's default."""

    idle_s: float | None = None
    interval_s: float | None = None
    count: int | None = None
    user_timeout_s: float | None = None

    @property
    def enabled(self) -> bool:
        return self.idle_s is not None or self.interval_s is not None or self.count is not None

    @property
    def dead_peer_s(self) -> float | None:
        return dead_peer_s(self.idle_s, self.interval_s, self.count)


@dataclass(frozen=True)
class KeepaliveInForce:
    """(schema: ``keepalive_in_force``) The settings read back from the kernel.

    A value this OS cannot read back is left out; a UDP check has only
    ``enabled`` (false).
    """

    enabled: bool
    idle_s: int | None = field(default=None, metadata=omitted_when_none())
    interval_s: int | None = field(default=None, metadata=omitted_when_none())
    count: int | None = field(default=None, metadata=omitted_when_none())
    user_timeout_s: float | None = field(default=None, metadata=omitted_when_none())

    @property
    def dead_peer_s(self) -> float | None:
        return dead_peer_s(self.idle_s, self.interval_s, self.count)


def dead_peer_s(idle_s: float | None, interval_s: float | None, count: int | None) -> float | None:
    """How long keepalive takes to end a connection whose peer answers no
    probe: the idle, then ``count`` unanswered probes (None: not all known)."""
    if idle_s is None or interval_s is None or count is None:
        return None
    return float(idle_s + interval_s * count)
