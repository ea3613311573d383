"""What a Discovery and its transports say to each other (probe/core/discovery.py).

The commands a Discovery gives (open, push, release, keep, and what the
event stream reports), the record it keeps per connection, and the facts a
transport hands it for the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from probe.core.after_expiry import AfterExpiry
from probe.core.designs import Design, DesignOutcome
from probe.core.evidence import IdleTest
from probe.core.nat import NatFacts

#: A connection: (flow state, the planner's connection number).
Key = tuple[str, int]


@dataclass(frozen=True)
class OnConnection:
    """A command about one connection."""

    key: Key


class OpenConnection(OnConnection):
    """Open a test connection, say hello and leave it idle."""


class KeepForAfterExpiry(OnConnection):
    """Stop reading this connection but keep it open: the after-expiry test
    speaks on it once the bracket is settled."""


@dataclass(frozen=True)
class Release(OnConnection):
    """Close our end and ask the server to free the session now: our own
    RST may die in the black hole that killed the flow."""

    #: The server's id for the connection (TCP session, UDP probe).
    session: str | None


@dataclass(frozen=True)
class RequestPush(OnConnection):
    """Ask the server to push on this connection now."""

    session: str | None
    #: How long it has been idle.
    age_s: float


@dataclass(frozen=True)
class Finished:
    """A flow state's planner finished, and why."""

    state: str
    reason: str


@dataclass(frozen=True)
class Recorded:
    """A new idle test, for the event stream (``state`` set for UDP)."""

    test: IdleTest
    state: str | None


@dataclass(frozen=True)
class Settled:
    """Every planner has finished: the bracket is the answer."""


@dataclass(frozen=True)
class GiveUp:
    """Too many opens failed in a row: the last failure is the run's error."""


Command = OpenConnection | RequestPush | Release | KeepForAfterExpiry | Finished | Recorded | Settled | GiveUp


@dataclass
class ConnRecord:
    """What the run knows of one test connection beyond its planner's view."""

    key: Key
    session: str | None = None
    observed: str | None = None
    #: The idle the server measured when it pushed (a UDP push's copies carry none).
    server_idle: float | None = None
    #: A UDP push's first copy arrived; later copies are the same push.
    arrived: bool = False


@dataclass(frozen=True)
class RunFacts:
    """What the transport learned, for the result: the rest is the Discovery's."""

    target: str
    transport: str
    nat: NatFacts
    server: str | None = None
    rtt_s: float | None = None
    ip_version: int = 4
    tls: bool = False
    proxy: str | None = None
    control: str | None = None
    interrupted: bool = False
    after_expiry: AfterExpiry | None = None
    inbound_refresh: bool | None = None
    #: Connections held beside the pool all along (control, UDP's refresh probe).
    side_connections: int = 1
    #: Connections opened in all, where the transport counts them itself
    #: (the design connections included).
    opened: int | None = None
    #: The design connections held beside the pool, and what they proved.
    design_connections: int = 0
    designs: dict[Design, DesignOutcome] | None = None
