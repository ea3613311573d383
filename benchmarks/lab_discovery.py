"""Discovery through the real kernel NAT of the lab, at the timeouts given.

    sudo python benchmarks/lab_discovery.py [--timeouts 23 120] [--json]

For each conntrack timeout T it builds the lab (probe/testing KernelNat:
client, router and server namespaces, addresses in 198.18.0.0/15), starts
``natprobe server`` in the server's namespace and runs ``natprobe discover
--json`` with default flags in the client's, then prints the bracket, the
connections held at once (``connections.max_open``, every connection
natprobe held, the control one included), and ``wall_s`` / T and
``total_s`` / T beside the goal 1.10 T + 2 s. Needs root (network
namespaces); a T of 120 s takes about two minutes and a half.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from probe.testing import KernelNat

PORT = 4040


def run_one(timeout: int) -> dict[str, Any]:
    with KernelNat(tcp_timeout=timeout) as nat:
        server = nat.server(
            [sys.executable, "-m", "probe", "server", "--tcp", f"{nat.server_ip}:{PORT}"],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert server.stderr is not None
            for _ in range(50):  # bounded: the server says so within a second
                if "listening on" in server.stderr.readline():
                    break
            client = nat.client(
                [sys.executable, "-m", "probe", "discover", f"tcp://{nat.server_ip}:{PORT}", "--json", "--no-save"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            out, err = client.communicate(timeout=2 * timeout + 60)
        finally:
            server.terminate()
            server.wait(timeout=10)
    if client.returncode != 0:
        raise SystemExit(f"discover exited {client.returncode}: {err.strip()[-300:]}")
    result: dict[str, Any] = json.loads(out)
    return {
        "timeout_s": timeout,
        "lower_s": result["lower_s"],
        "upper_s": result["upper_s"],
        "max_open": result["connections"]["max_open"],
        "pool": result["connections"]["pool"],
        "wall_s": result["wall_s"],
        "total_s": result["total_s"],
        "wall_over_t": round(result["wall_s"] / timeout, 3),
        "total_over_t": round(result["total_s"] / timeout, 3),
        "goal_s": round(1.10 * timeout + 2, 2),
        "after_expiry": (result["after_expiry"] or {}).get("outcome"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeouts", type=int, nargs="+", default=[23, 120])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [run_one(t) for t in args.timeouts]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'T s':>5} {'bracket s':>16} {'max_open':>8} {'wall s':>7} {'total s':>7} {'goal s':>7} "
          f"{'wall/T':>6} {'total/T':>7}  after expiry")  # fmt: skip
    for r in rows:
        bracket = f"{r['lower_s']:.3f}-{r['upper_s']:.3f}"
        ratios = f"{r['wall_over_t']:>6.3f} {r['total_over_t']:>7.3f}"
        print(f"{r['timeout_s']:>5} {bracket:>16} {r['max_open']:>8} {r['wall_s']:>7.2f} {r['total_s']:>7.2f} "
              f"{r['goal_s']:>7.2f} {ratios}  {r['after_expiry']}")  # fmt: skip


if __name__ == "__main__":
    main()
