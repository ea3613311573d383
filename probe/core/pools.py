"""How many connections a discovery holds at once, by transport.

``--parallel`` (and the exporter's ``parallel``) counts every connection a
discovery holds at once, its control connection included. A TCP or
WebSocket discovery gives the rest to its one planner. A UDP discovery
also holds its inbound-refresh probe, and shares the rest between its three
flow states' planners: each probe is used once, so each state needs a pool
of its own (docs/discovery.md, "UDP: three flow states at once").
"""

from __future__ import annotations

from probe.core.discovery import MIN_POOL, UDP_STATES
from probe.core.planner import PlannerConfig
from probe.core.targets import Transport
from probe.errors import UsageError

#: Held beside the pools: the control connection (all), the refresh probe (UDP).
SIDE = {Transport.TCP: 1, Transport.WS: 1, Transport.UDP: 2}
UDP_STATE_COUNT = len(UDP_STATES)
#: TCP and WebSocket: the control connection and the planner's 63.
DEFAULT_PARALLEL = SIDE[Transport.TCP] + PlannerConfig.max_conns
#: UDP: the control connection, the inbound-refresh probe and 63 probes per
#: flow state (191). Each probe is tested once, so fewer miss the time goal
#: where the states' timers are alike (docs/discovery.md, "Why not 96 probes").
DEFAULT_UDP_PARALLEL = SIDE[Transport.UDP] + UDP_STATE_COUNT * PlannerConfig.max_conns


def default_parallel(transport: Transport) -> int:
    return DEFAULT_UDP_PARALLEL if transport is Transport.UDP else DEFAULT_PARALLEL


def pool_for(transport: Transport, parallel: int | None, name: str = "--parallel") -> int:
    """Test connections per planner when ``parallel`` are allowed at once
    in all (None: the transport's default); UsageError, naming the option
    ``name``, if too few."""
    total = default_parallel(transport) if parallel is None else parallel
    shared = UDP_STATE_COUNT if transport is Transport.UDP else 1
    pool = (total - SIDE[transport]) // shared
    if pool < MIN_POOL:
        least = SIDE[transport] + MIN_POOL * shared
        raise UsageError(f"{name}: {transport.value}:// needs at least {least} connections at once, got {total}")
    return pool
