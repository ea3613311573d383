"""``survey``: several discoveries at once, one per path to the server.

A path is a target over one address family. A host name with both A and
AAAA records is two paths (``--family both``): IPv4 often crosses a NAT where
IPv6 crosses a stateful firewall with another timer. Every path has its own
planner and connections; they run side by side, so the survey takes about
as long as its slowest path, not the sum. Paths to one server process from
one client address share its per-address limit through a ``PoolShare``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from probe.core.planner import PlannerConfig
from probe.core.survey import FAMILY_NAMES, PathError, PoolShare, SurveyPath, SurveyResult
from probe.core.targets import Scheme, control_for
from probe.errors import NatprobeError, TargetError, UsageError
from probe.net.dial import Endpoint
from probe.run.control import interrupts
from probe.run.jobs import DiscoverJob, Discovery, discovery

Observer = Callable[[dict[str, Any]], None]

#: FAMILY_NAMES ("4", "6", "both") as the socket families each stands for.
FAMILIES: dict[str, tuple[int, ...]] = dict(
    zip(FAMILY_NAMES, ((socket.AF_INET,), (socket.AF_INET6,), (socket.AF_INET, socket.AF_INET6)), strict=True)
)
_VERSION: dict[int, int] = {socket.AF_INET: 4, socket.AF_INET6: 6}


@dataclass(frozen=True)
class SurveyOptions:
    #: One Endpoint per target, in the order given.
    endpoints: tuple[Endpoint, ...]
    planner: PlannerConfig
    family: str = "both"
    grace_s: float | None = None
    #: Each path's connections at once (DiscoverJob.parallel).
    parallel: int | None = None


@dataclass(frozen=True)
class Path:
    """What one discovery of the survey reaches: ``given`` as the user wrote it."""

    given: str
    endpoint: Endpoint
    #: 4 or 6; None through a proxy, which resolves the name itself.
    family: int | None
    #: A udp:// path's control connection when not the default (tcp:// on
    #: the target's host and port): the name given, over the path's family.
    control: Endpoint | None = None


def literal_family(host: str) -> int | None:
    """4 or 6 for an IP literal, None for a name."""
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None


async def expand(endpoint: Endpoint, family: str) -> list[Path]:
    """The paths one target stands for under ``--family``."""
    target = endpoint.target
    given = str(target)
    wanted = FAMILIES[family]
    if endpoint.proxy is not None:
        return [Path(given, endpoint, None)]
    version = literal_family(target.host)
    if version is not None:
        if all(_VERSION[f] != version for f in wanted):
            raise UsageError(f"{given} is an IPv{version} address and --family is {family}")
        return [Path(given, endpoint, version)]
    udp = target.scheme is Scheme.UDP
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    except OSError as exc:
        raise TargetError(f"cannot resolve {target.host}: {exc.strerror or exc}") from None
    found: dict[int, str] = {}
    for info in infos:
        if info[0] in wanted and info[0] not in found:
            found[int(info[0])] = str(info[4][0])
    if not found:
        names = " or ".join(f"IPv{_VERSION[f]}" for f in wanted)
        raise TargetError(f"{target.host} has no {names} address")
    paths: list[Path] = []
    for fam in (f for f in wanted if f in found):
        if udp:
            # Each UDP probe is a socket of its own: aim them at the address
            # of this family; the control connection keeps the name, over
            # the same family.
            control = control_for(target, None)
            assert control is not None
            probes = replace(endpoint, target=replace(target, host=found[fam]))
            paths.append(Path(given, probes, _VERSION[fam], replace(endpoint.to(control), family=fam)))
        else:
            paths.append(Path(given, replace(endpoint, family=fam), _VERSION[fam]))
    return paths


def _runner(path: Path, options: SurveyOptions, share: PoolShare, observer: Observer | None) -> Discovery:
    """One path's discovery; the survey, not the runner, handles Ctrl-C."""
    job = DiscoverJob(
        path.endpoint, options.planner, grace_s=options.grace_s, control=path.control, parallel=options.parallel
    )
    return discovery(job, observer=observer, share=share, own_signals=False)


def _tagged(observer: Observer | None, index: int, path: Path) -> Observer | None:
    if observer is None:
        return None

    def tag(event: dict[str, Any]) -> None:
        observer({**event, "path": index, "family": path.family})

    return tag


async def run_survey(
    options: SurveyOptions,
    observer: Observer | None = None,
    clock: Callable[[], float] = time.monotonic,
    own_signals: bool = True,
) -> SurveyResult:
    """Every path at once; a path that cannot be measured is reported, not fatal.

    ``own_signals``: Ctrl-C and SIGTERM stop the survey with what it measured;
    False where the caller handles signals itself (the exporter).
    """
    started = clock()
    # Each target's paths in the order given; a name that does not resolve
    # is that target's error, and the others are still measured.
    planned: list[Path | SurveyPath] = []
    for endpoint in options.endpoints:
        try:
            planned.extend(await expand(endpoint, options.family))
        except TargetError as exc:
            error = PathError(exc.message, int(exc.exit_code))
            planned.append(SurveyPath(str(endpoint.target), None, endpoint.target.port, error=error))
    paths = [p for p in planned if isinstance(p, Path)]
    share = PoolShare(runs=len(paths))
    runners: list[Discovery] = []
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        for runner in runners:
            runner.interrupt()

    with interrupts(interrupt, own_signals):
        for index, path in enumerate(paths):
            runners.append(_runner(path, options, share, _tagged(observer, index, path)))
        outcomes = await asyncio.gather(*(r.run() for r in runners), return_exceptions=True)
    ended = clock()
    # The outcomes come in the order of ``paths``, which is that of
    # ``planned`` without the targets that did not resolve.
    measured = iter(zip(paths, runners, outcomes, strict=True))
    surveyed = []
    settled: list[float] = []
    for item in planned:
        if isinstance(item, SurveyPath):
            surveyed.append(item)
            continue
        path, runner, outcome = next(measured)
        port = path.endpoint.target.port
        if isinstance(outcome, NatprobeError):
            error = PathError(outcome.message, int(outcome.exit_code))
            surveyed.append(SurveyPath(path.given, path.family, port, error=error))
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            surveyed.append(SurveyPath(path.given, path.family, port, result=outcome))
            settled.append(runner.settled if runner.settled is not None else ended)
    # As discover's wall_s: until the answer (the last bracket) was known;
    # total_s also covers the after-expiry tests that follow it. A path that
    # failed has no bracket to wait for.
    wall = max(settled, default=ended) - started
    return SurveyResult(tuple(surveyed), wall, interrupted, total_s=ended - started)
