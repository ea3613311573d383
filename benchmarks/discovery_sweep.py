"""The discovery goal over many random timeouts, RTTs and pool sizes (virtual time).

    python benchmarks/discovery_sweep.py [--timeouts 150] [--rtt 0.001 0.02 0.1]
                                         [--parallel 32 64] [--loss 0] [--jitter 0]
                                         [--open-gap-frac F] [--open-gap-abs 0.05]

For each RTT and --parallel cap (every connection at once, as on the command
line: the control connection and the two the after-expiry test keeps aside
leave the rest to the planner) it runs the planner against a virtual-time NAT
with timeouts drawn log-uniformly from 1 s to 2 h 10 min (fixed seed), with the
timing the runner derives from the RTT (grace, suspect period), and counts the
runs that miss the goal: bracket contains T and is at most max(2% T, 0.5 s)
wide, wall time at most 1.10 T + 2 s + grace.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probe.core.planner import Planner, PlannerConfig
from probe.core.pools import tcp_planner_pool
from probe.lab.simnat import SimPath, simulate


def sweep(
    count: int,
    rtt: float,
    parallel: int,
    loss: float,
    jitter: float,
    gap_frac: float | None = None,
    gap_abs: float = 0.05,
) -> tuple[int, int, float]:
    """(runs missing the goal, most connections open, worst (wall - 2 s - grace) / T)."""
    rng = random.Random(5)
    grace = max(1.0, 0.4 + 4 * rtt)
    # The planner's share, as a real discovery sizes it (probe/core/discovery.py).
    pool = tcp_planner_pool(parallel)
    config = PlannerConfig(
        max_conns=pool, grace_s=grace, suspect_s=max(0.1, 3 * rtt + 0.02),
        open_gap_frac=gap_frac, open_gap_abs_s=gap_abs,
    )  # fmt: skip
    missed, most, worst = 0, 0, 0.0
    for _ in range(count):
        timeout = round(10 ** rng.uniform(0, 3.89), 2)
        path = SimPath(timeout, rtt_s=rtt, loss_once=loss, rtt_jitter=jitter)
        result = simulate(Planner(config), path)
        b = result.bracket
        ok = (
            b.lower is not None
            and b.upper is not None
            and b.lower <= timeout <= b.upper
            and b.upper - b.lower <= max(0.02 * timeout, 0.5) + 1e-9
            and result.wall_s <= 1.10 * timeout + 2.0 + grace + 1e-6
        )
        missed += not ok
        # The two kept aside count as the real discovery counts them.
        most = max(most, result.max_connections + parallel - 1 - pool)
        worst = max(worst, (result.wall_s - 2.0 - grace) / timeout)
    return missed, most, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeouts", type=int, default=150)
    parser.add_argument("--rtt", type=float, nargs="+", default=[0.001, 0.02, 0.1])
    parser.add_argument("--parallel", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--jitter", type=float, default=0.0)
    # The opening schedule: gaps of max(abs, frac x elapsed) between new
    # connections; without --open-gap-frac, the planner's own (PlannerConfig.gap_frac).
    parser.add_argument("--open-gap-frac", type=float, default=None)
    parser.add_argument("--open-gap-abs", type=float, default=0.05)
    args = parser.parse_args()
    print(f"{'parallel':>8} {'rtt ms':>7} {'runs':>5} {'missed':>6} {'max conns':>9} {'worst wall/T':>12}")
    for parallel in args.parallel:
        for rtt in args.rtt:
            missed, most, worst = sweep(
                args.timeouts, rtt, parallel, args.loss, args.jitter, args.open_gap_frac, args.open_gap_abs
            )
            print(f"{parallel:8d} {rtt * 1000:7.1f} {args.timeouts:5d} {missed:6d} {most:9d} {worst:12.3f}")


if __name__ == "__main__":
    main()
