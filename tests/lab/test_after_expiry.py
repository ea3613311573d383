"""After the timeout, through the kernel NAT: what the application meets, what
the server saw, and that the server lets go of forgotten sessions.

Each configuration is one of the lab's switches (docs/lab.md):
loose = mid-stream pickup, random_ports = masquerade fully-random,
router_rst = the router answers server packets of forgotten flows with RST;
kernel_nat's ``after_expiry`` words set the first two (probe/testing/kernel.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from probe.lab.netns import SERVER_IP
from probe.testing import KernelNat
from tests.conftest import PIPES, scaled
from tests.lab.conftest import natprobe_json, natprobe_server

TCP = f"tcp://{SERVER_IP}:4040"
WS = f"ws://{SERVER_IP}:8080/natprobe"

# (kernel_nat's after_expiry and switches, quiet outcome, after-a-lost-push
# outcome, late push delivered)
CASES = {
    # Strict NAT: the client's packet is INVALID and dropped.
    "blackhole": ({"after_expiry": "blackhole"}, "blackhole", "blackhole", False),
    # Pickup re-creates the mapping on the same port; the router had dropped
    # the server's push silently, so its retransmission now gets through.
    "revived": ({"after_expiry": "revive"}, "revived", "revived", True),
    # Pickup on a new port: the server does not know the flow and resets it.
    "reset": ({"after_expiry": "reset"}, "reset", "reset", False),
    # Same port, but the router had answered the server's push with RST: the
    # server's side is gone, so the revived flow meets a reset there.
    "revived_router_rst": ({"after_expiry": "revive", "router_rst": True}, "revived", "reset", False),
}


def established(lab: KernelNat, port: int) -> int:
    """Established TCP connections on the server's ``port``, from the kernel's table."""
    ss = lab.server(["ss", "-tnH", "state", "established", f"( sport = :{port} )"], **PIPES)
    out, _ = ss.communicate(timeout=scaled(10))
    assert ss.returncode == 0
    return len([line for line in out.splitlines() if line.strip()])


def wait_for(condition: Callable[[], bool], within_s: float) -> bool:
    """Poll a condition on the kernel's state until it holds; bounded."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def lost_pushes(result: dict[str, Any]) -> int:
    return sum(1 for p in result["probes"] if p["source"] == "deadline" and p["outcome"] == "failed")


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("target", [TCP, WS])
def test_after_expiry_outcome(kernel_nat: Callable[..., KernelNat], case: str, target: str) -> None:
    switches, quiet, lost, late = CASES[case]
    port = 4040 if target == TCP else 8080
    with kernel_nat(2, **switches) as lab:
        natprobe_server(lab, "--tcp", f"{SERVER_IP}:4040", "--ws", f"{SERVER_IP}:8080")
        result = natprobe_json(lab, "discover", target, "--no-save")
        # The run is over: every test connection of it is freed within a few
        # seconds, also those behind the black hole whose FIN never arrives.
        freed = wait_for(lambda: established(lab, port) == 0, scaled(5))
    assert result["lower_s"] <= 2.0 <= result["upper_s"]
    after = result["after_expiry"]
    assert after["outcome"] == quiet, after
    assert after["after_lost_push"]["outcome"] == lost, after
    assert after["after_lost_push"]["late_push_delivered"] is late
    if quiet == "revived":
        assert after["port_changed"] is False
    # The after-expiry test adds seconds, not minutes.
    assert result["total_s"] - result["wall_s"] <= 10.5
    # From the far end: every push lost in the gap was unacknowledged.
    assert result["server_view"]["unacknowledged_pushes"] == lost_pushes(result) >= 1
    assert freed


def test_a_silent_router_leaves_the_server_retransmitting_and_still_counts_every_lost_push(
    kernel_nat: Callable[..., KernelNat],
) -> None:
    with kernel_nat(2, loose=False, router_rst=False) as lab:
        natprobe_server(lab, "--tcp", f"{SERVER_IP}:4040")
        result = natprobe_json(lab, "discover", TCP, "--no-save")
        freed = wait_for(lambda: established(lab, 4040) == 0, scaled(5))
    assert result["after_expiry"]["outcome"] == "blackhole"
    assert result["after_expiry"]["after_lost_push"]["outcome"] == "blackhole"
    assert result["server_view"]["unacknowledged_pushes"] == lost_pushes(result) >= 1
    assert freed


@pytest.mark.parametrize(("case", "expected"), [("blackhole", "blackhole"), ("revived", "revived")])
def test_check_reports_what_its_failed_connection_meets(
    kernel_nat: Callable[..., KernelNat], case: str, expected: str
) -> None:
    switches = CASES[case][0]
    with kernel_nat(2, **switches) as lab:
        natprobe_server(lab, "--tcp", f"{SERVER_IP}:4040")
        result = natprobe_json(lab, "check", TCP, "--idle", "4", "--no-save", expect_rc=1)
    assert result["passed"] is False and result["failure_mode"] == "silent_drop"
    lost = result["after_expiry"]["after_lost_push"]
    assert lost["outcome"] == expected
    assert lost["late_push_delivered"] is (expected == "revived")
    assert result["after_expiry"]["outcome"] is None


def test_the_server_frees_a_session_whose_push_stays_unacknowledged(kernel_nat: Callable[..., KernelNat]) -> None:
    # Timeline: the check's push is due at 4 s and dropped by the silent
    # router; the check gives up and closes, its FIN lost too. The server's
    # TCP_USER_TIMEOUT (6 s) frees the session at about 4 + 6 = 10 s.
    with kernel_nat(2, loose=False, router_rst=False) as lab:
        natprobe_server(lab, "--tcp", f"{SERVER_IP}:4040", "--user-timeout", "6s")
        started = time.monotonic()
        natprobe_json(lab, "check", TCP, "--idle", "4", "--no-save", expect_rc=1)
        held = established(lab, 4040)
        freed = wait_for(lambda: established(lab, 4040) == 0, scaled(8))
        elapsed = time.monotonic() - started
    assert held == 1, "the session behind the black hole should still be held when the check ends"
    assert freed and elapsed >= 9.0
