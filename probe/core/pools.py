"""How many connections a discovery holds at once, by transport.

``--parallel`` (and the exporter's ``parallel``) counts every connection a
discovery holds at once, its control connection included. A TCP or
WebSocket discovery gives the rest to its one planner. A UDP discovery
also holds its inbound-refresh probe, and shares the rest between its three
flow states' planners: each probe is used once, so each state needs a pool
of its own (docs/discovery.md, "UDP: three flow states at once").
"""

from __future__ import annotations

from probe.core.discovery import MIN_POOL, TCP, UDP_STATES, Discovery
from probe.core.planner import PlannerConfig
from probe.core.targets import Transport
from probe.errors import UsageError

#: Held beside the pools: the control connection (all), the refresh probe (UDP).
SIDE = {Transport.TCP: 1, Transport.WS: 1, Transport.UDP: 2}
UDP_STATE_COUNT = len(UDP_STATES)
#: TCP and WebSocket: the control connection and the planner's 31, of which
#: the after-expiry test keeps two aside (32 in all). Fewer than about 47 miss
#: the 1.10 T + 2 s goal above T of about 100 s, by up to 1.21 T; the bracket
#: stays as narrow (docs/discovery.md, "Why not 32").
DEFAULT_PARALLEL = SIDE[Transport.TCP] + PlannerConfig.max_conns
#: UDP: the control connection, the inbound-refresh probe and 31 probes per
#: flow state (95, within 96). Each probe is tested once, so where the states'
#: timers are alike and long the answer comes later (docs/discovery.md, "UDP
#: probes: 96 at once").
DEFAULT_UDP_PARALLEL = 96


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


def tcp_planner_pool(parallel: int | None = None) -> int:
    """The TCP planner's own test connections under ``parallel`` at once:
    what the control connection and the after-expiry test's two leave."""
    pool = pool_for(Transport.TCP, parallel)
    return Discovery.for_tcp(PlannerConfig(max_conns=pool)).planners[TCP].config.max_conns
