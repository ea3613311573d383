"""Discovery methods against a virtual-time NAT, all in one run.

    python benchmarks/discovery.py [--json] [--parallel 32] [--udp] [--udp-pool 31]

Methods:
  natprobe   the one-pass planner (probe/core/planner.py)
  bisection  one connection: idle 1, 2, 4, ... s until a failure, then bisect
  grid       20 connections at once on a geometric grid, then refine rounds of
             20 on a linear grid inside the bracket found

Each runs against the same simulated NAT (probe/lab/simnat.py) for timeouts of
5, 30, 120, 350, 1200 and 7000 s, with exact expiry and with a table swept every
5% of T (at least 1 s), so flows expire up to one sweep late. Every method must
reach the same target width, max(2% of T, 0.5 s); a failure costs the same grace
period (1 s) in every method.

UDP (--udp, or the "udp" rows of --json): natprobe measures the three flow
states (unreplied, replied, stream) at once, one single-use probe per test,
against timer profiles people meet: Linux conntrack (30 s until a flow is a
stream, then 120 s), AWS connection tracking (30 s / 180 s) and a carrier NAT
(15 s after the first outbound packet, 300 s once answered), and with every
state's timer alike at each T above. Probes at once count three pools of 31
(probe/core/pools.py, --parallel 96; --udp-pool changes it, 63 is --parallel
191), the control connection and the inbound-refresh probe. The baseline is a bisection per state, one state
after another (natbd reuses one socket, so it cannot run them at once).
wall_ratio is against the longest timer; goal = wall <= 1.10 T + 2 s (plus
the stream state's 2.5 s setup) and every state's width <= max(2%, 0.5 s).

natprobe holds --parallel connections at once (32 by default, as the CLI): the
control connection, the two the after-expiry test keeps aside, and the
planner's pool of the rest.

Columns: wall_ratio = wall time / T; width_ratio = bracket width / T;
max_connections = connections open at once (natprobe counts its control
connection and the two kept aside); connections_opened; contains = lower <= T
<= upper; honest = the bracket overlaps [T, T + sweep] and no survival beyond
T + sweep; goal = contains, width <= max(2% of T, 0.5 s) and wall <= 1.10 T +
2 s + the grace.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probe.core.discovery import UDP_STATES, Discovery
from probe.core.planner import Planner, PlannerConfig
from probe.core.pools import DEFAULT_PARALLEL, SIDE, pool_for, tcp_planner_pool
from probe.core.targets import Transport
from probe.lab.simnat import DiscoverySim, SimNat, SimPath, simulate
from probe.run.udp_session import STREAM_GAP_S

TIMEOUTS = (5.0, 30.0, 120.0, 350.0, 1200.0, 7000.0)
GRACE_S = 1.0
MAX_IDLE_S = 7800.0
RTT_S = 0.02


def target_width(lower: float) -> float:
    return max(0.02 * lower, 0.5)


@dataclass
class Row:
    method: str
    timeout_s: float
    sweep_s: float
    wall_ratio: float
    width_ratio: float
    max_connections: int
    connections_opened: int
    lower_s: float | None
    upper_s: float | None
    contains: bool
    honest: bool
    goal: bool


def _row(
    method: str, path: SimPath, wall: float, lower: float | None, upper: float | None, max_conns: int, opened: int
) -> Row:
    t, sweep = path.timeout_s, path.sweep_s
    width = None if upper is None or lower is None else upper - lower
    contains = lower is not None and upper is not None and lower <= t <= upper
    honest = upper is not None and upper >= t and (lower is None or lower <= t + sweep)
    goal = contains and width is not None and width <= target_width(t) + 1e-9 and wall <= 1.10 * t + 2.0 + GRACE_S
    return Row(
        method=method,
        timeout_s=t,
        sweep_s=sweep,
        wall_ratio=round(wall / t, 3),
        width_ratio=round(width / t, 4) if width is not None else float("nan"),
        max_connections=max_conns,
        connections_opened=opened,
        lower_s=None if lower is None else round(lower, 3),
        upper_s=None if upper is None else round(upper, 3),
        contains=contains,
        honest=honest,
        goal=goal,
    )


def run_natprobe(path: SimPath, parallel: int = DEFAULT_PARALLEL) -> Row:
    pool = tcp_planner_pool(parallel)
    result = simulate(Planner(PlannerConfig(grace_s=GRACE_S, max_conns=pool)), path)
    b = result.bracket
    # The control connection and the two kept aside, as a real discovery counts them.
    held = result.max_connections + parallel - 1 - pool
    return _row("natprobe", path, result.wall_s, b.lower, b.upper, held, result.connections_opened)


class _Tester:
    """Runs scheduled-push tests (push_after on a fresh idle period) on a NAT."""

    def __init__(self, path: SimPath) -> None:
        self.nat = SimNat(path)
        self.flows = 0
        self.opened = 0

    def test(self, start: float, idle: float) -> bool:
        """A connection idle from ``start`` gets its push at ``start + idle``?"""
        self.flows += 1
        flow = self.flows
        self.nat.create(flow, start)
        alive = self.nat.alive(flow, start + idle)
        self.nat.remove(flow)
        return alive


def run_bisection(path: SimPath) -> Row:
    tester = _Tester(path)
    now, lower, upper = 0.0, 0.0, None
    opened = 1
    idle = 1.0
    for _ in range(200):
        if upper is not None and upper - lower <= target_width(lower):
            break
        if upper is None:
            if lower >= MAX_IDLE_S:
                break
            probe = min(idle, MAX_IDLE_S)
            idle *= 2
        else:
            probe = (lower + upper) / 2
        survived = tester.test(now + RTT_S, probe)
        now += RTT_S + probe
        if survived:
            lower = probe
        else:
            # Lost push: wait out the grace, open a new connection.
            upper = probe
            now += GRACE_S + 2 * RTT_S
            opened += 1
    return _row("bisection", path, now, lower, upper, 1, opened)


def run_grid(path: SimPath, width: int = 20) -> Row:
    tester = _Tester(path)
    now, lower, upper = 0.0, 0.0, None
    opened = 0
    lo, hi = 1.0, MAX_IDLE_S
    geometric = True
    for _ in range(50):
        if geometric:
            ratio = (hi / lo) ** (1 / (width - 1))
            grid = [lo * ratio**i for i in range(width)]
        else:
            step = (hi - lo) / (width + 1)
            grid = [lo + step * (i + 1) for i in range(width)]
        opened += width
        start = now + RTT_S
        results = [(d, tester.test(start, d)) for d in grid]
        failed = [d for d, ok in results if not ok]
        survived = [d for d, ok in results if ok and (not failed or d < min(failed))]
        if survived:
            lower = max(lower, max(survived))
        if failed:
            upper = min(failed)
            # The round is decided when its shortest failure is confirmed.
            now = start + upper + GRACE_S
        else:
            now = start + grid[-1]
            if not geometric or hi >= MAX_IDLE_S:
                break
        if upper is not None and upper - lower <= target_width(lower):
            break
        lo, hi = lower, upper if upper is not None else MAX_IDLE_S
        geometric = False
    return _row("grid", path, now, lower, upper, width, opened)


#: name -> (unreplied, replied, stream) timers in seconds.
UDP_PROFILES: dict[str, tuple[float, float, float]] = {
    "linux-conntrack": (30.0, 30.0, 120.0),
    "aws": (30.0, 30.0, 180.0),
    "carrier-nat": (15.0, 300.0, 300.0),
    # The TCP rows' timeouts, every state alike: the goal across 5 s to 2 h.
    **{f"all-{t:g}": (t, t, t) for t in TIMEOUTS},
}
#: The default: 31 probes per flow state (probe/core/pools.py).
UDP_POOL = pool_for(Transport.UDP, None)


@dataclass
class UdpRow:
    method: str
    profile: str
    timers_s: tuple[float, float, float]
    wall_s: float
    wall_ratio: float
    max_probes: int
    probes_opened: int
    brackets: dict[str, tuple[float | None, float | None]]
    contains: bool
    #: wall <= 1.10 T + 2 s (T the longest timer; the stream state's 2.5 s
    #: setup counted) and every state's width <= max(2% of its timer, 0.5 s).
    goal: bool


def run_udp(profile: str, pool: int = UDP_POOL) -> list[UdpRow]:
    timers = UDP_PROFILES[profile]
    longest = max(timers)
    walls, conns, opened = [], 0, 0
    brackets: dict[str, tuple[float | None, float | None]] = {}
    bisect: dict[str, tuple[float | None, float | None]] = {}
    bisect_wall, bisect_opened = 0.0, 0
    for state, timer in zip(UDP_STATES, timers, strict=True):
        path = SimPath(timer, rtt_s=RTT_S, seed=int(timer) + len(state), udp_state=state)
        # The state's own Discovery, set up and timed as a real run's: its
        # stream delay, single-use probes and unreplied failure margin.
        discovery = Discovery.for_udp(PlannerConfig(max_conns=pool), (state,), STREAM_GAP_S)
        discovery.configure(RTT_S, GRACE_S)
        result = DiscoverySim(discovery, {state: path}).run()
        walls.append(result.wall_s)
        conns += result.max_connections - 1
        opened += result.connections_opened - 1
        b = result.bracket
        brackets[state] = (b.lower, b.upper)
        row = run_bisection(SimPath(timer, rtt_s=RTT_S))
        bisect[state] = (row.lower_s, row.upper_s)
        # One state after another, each needing its own setup first.
        bisect_wall += row.wall_ratio * timer + discovery.planners[state].config.open_delay_s
        bisect_opened += row.connections_opened

    def contains(found: dict[str, tuple[float | None, float | None]]) -> bool:
        return all(
            lo is not None and hi is not None and lo <= t <= hi
            for (lo, hi), t in zip(found.values(), timers, strict=True)
        )

    def goal(found: dict[str, tuple[float | None, float | None]], wall: float) -> bool:
        narrow = all(
            lo is not None and hi is not None and hi - lo <= max(0.02 * t, 0.5) + 1e-9
            for (lo, hi), t in zip(found.values(), timers, strict=True)
        )
        # The stream state's setup: its two exchanges, STREAM_GAP_S apart.
        return narrow and wall <= 1.10 * longest + 2.0 + STREAM_GAP_S + 2 * RTT_S

    def rounded(found: dict[str, tuple[float | None, float | None]]) -> dict[str, tuple[float | None, float | None]]:
        return {k: tuple(None if v is None else round(v, 3) for v in pair) for k, pair in found.items()}  # type: ignore[misc]

    wall = max(walls)
    side = SIDE[Transport.UDP]  # the control connection and the inbound-refresh probe
    return [
        UdpRow("natprobe", profile, timers, round(wall, 2), round(wall / longest, 3), conns + side, opened + side,
               rounded(brackets), contains(brackets), goal(brackets, wall)),
        UdpRow("bisection", profile, timers, round(bisect_wall, 2), round(bisect_wall / longest, 3), 1,
               bisect_opened, rounded(bisect), contains(bisect), goal(bisect, bisect_wall)),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    parser.add_argument("--udp", action="store_true", help="print the UDP rows only")
    parser.add_argument(
        "--udp-pool", type=int, default=UDP_POOL, help=f"UDP probes at once per flow state (default {UDP_POOL})"
    )
    parser.add_argument(
        "--parallel", type=int, default=DEFAULT_PARALLEL,
        help=f"natprobe's TCP connections at once, all counted (default {DEFAULT_PARALLEL})",
    )  # fmt: skip
    args = parser.parse_args()
    started = time.perf_counter()
    udp_rows = [row for profile in UDP_PROFILES for row in run_udp(profile, args.udp_pool)]
    if args.udp and not args.json:
        print(f"{'method':10} {'profile':16} {'timers (s)':>16} {'wall (s)':>9} {'wall/T':>7} {'probes':>7} "
              f"{'opened':>7} {'contains':>8} {'goal':>5}")  # fmt: skip
        for u in udp_rows:
            timers = "/".join(f"{t:g}" for t in u.timers_s)
            print(
                f"{u.method:10} {u.profile:16} {timers:>16} {u.wall_s:9.1f} {u.wall_ratio:7.3f} {u.max_probes:7d} "
                f"{u.probes_opened:7d} {u.contains!s:>8} {u.goal!s:>5}"
            )
        return
    rows: list[Row] = []
    for timeout in TIMEOUTS:
        for sweep in (0.0, max(1.0, 0.05 * timeout)):
            path = SimPath(timeout, sweep_s=sweep, rtt_s=RTT_S, seed=int(timeout) + 1)
            rows.append(run_natprobe(path, args.parallel))
            rows.append(run_bisection(path))
            rows.append(run_grid(path))
    elapsed = time.perf_counter() - started
    if args.json:
        data = {"rows": [asdict(r) for r in rows], "udp": [asdict(u) for u in udp_rows], "elapsed_s": round(elapsed, 2)}
        print(json.dumps(data, indent=2))
        return
    header = (
        f"{'method':10} {'T':>7} {'sweep':>6} {'wall/T':>7} {'width/T':>8} "
        f"{'conns':>6} {'opened':>7} {'contains':>8} {'honest':>6} {'goal':>5}"
    )
    print(header)
    for r in rows:
        print(
            f"{r.method:10} {r.timeout_s:7.0f} {r.sweep_s:6.1f} {r.wall_ratio:7.3f} {r.width_ratio:8.4f} "
            f"{r.max_connections:6d} {r.connections_opened:7d} {r.contains!s:>8} {r.honest!s:>6} {r.goal!s:>5}"
        )
    print(f"({elapsed:.1f}s)")


if __name__ == "__main__":
    main()
