"""Which runner does a job, by transport: the one place that chooses.

``discover``, ``survey`` and the exporter describe a discovery the same way
(a ``DiscoverJob``) and ask ``discovery`` for its runner: tcp:// and ws(s)://
targets get the TCP runner, udp:// the UDP one with its control connection.
The defaults every caller shares live here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from probe.core.planner import PlannerConfig
from probe.core.pools import DEFAULT_PARALLEL, pool_for
from probe.core.survey import PoolShare
from probe.core.targets import Transport, control_for
from probe.net.dial import Endpoint
from probe.run.discover import DiscoverOptions, DiscoverRun
from probe.run.discover_udp import UdpDiscoverOptions, UdpDiscoverRun

__all__ = ["DEFAULT_MAX_IDLE_S", "DEFAULT_PARALLEL", "DiscoverJob", "Discovery", "discovery"]

#: The longest idle a discovery tests unless told.
DEFAULT_MAX_IDLE_S = PlannerConfig.max_idle_s

Discovery = DiscoverRun | UdpDiscoverRun
Observer = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class DiscoverJob:
    endpoint: Endpoint
    planner: PlannerConfig
    #: None: from the measured round-trip time.
    grace_s: float | None = None
    #: udp:// only: the control connection (default tcp:// on the target's host and port).
    control: Endpoint | None = None
    #: Connections held at once in all, the control connection included;
    #: None: the transport's default (probe/core/pools.py). It sets the
    #: planners' ``max_conns``.
    parallel: int | None = None
    #: tcp:// and ws(s)://: hold each kept design at the recommended interval for 1.5 x upper_s.
    confirm: bool = False


def discovery(
    job: DiscoverJob, observer: Observer | None = None, share: PoolShare | None = None, own_signals: bool = True
) -> Discovery:
    """The runner for the job's transport.

    ``share``: a survey's pool ledger (TCP and WebSocket discoveries size
    their pools by it). ``own_signals`` False where the caller handles
    Ctrl-C and SIGTERM itself (a survey, the exporter).
    """
    target = job.endpoint.target
    planner = replace(job.planner, max_conns=pool_for(target.transport, job.parallel))
    runner: Discovery
    if target.transport is Transport.UDP:
        named = control_for(target, None)
        assert named is not None  # every udp:// target has a default control
        control = job.control or job.endpoint.to(named)
        runner = UdpDiscoverRun(UdpDiscoverOptions(target, control, planner, grace_s=job.grace_s), observer=observer)
    else:
        options = DiscoverOptions(job.endpoint, planner, grace_s=job.grace_s, confirm=job.confirm)
        runner = DiscoverRun(options, observer=observer, share=share)
    runner.own_signals = own_signals
    return runner
