"""Against the Linux kernel's NAT and conntrack, in network namespaces.

Timeouts are conntrack's nf_conntrack_tcp_timeout_established in the router
namespace (whole seconds). Each test builds its own lab, so they run in
parallel; namespaces are removed even when a test fails.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from probe.lab.netns import ROUTER_OUTSIDE_IP, SERVER_IP
from probe.testing import KernelNat
from tests.lab.conftest import natprobe, natprobe_json, natprobe_server, start_in

TCP = f"tcp://{SERVER_IP}:4040"
WS = f"ws://{SERVER_IP}:8080/natprobe"


@pytest.mark.parametrize("target", [TCP, WS])
def test_discover_brackets_the_conntrack_timeout_as_a_silent_drop(
    kernel_nat: Callable[..., KernelNat], target: str
) -> None:
    with kernel_nat(3) as lab:
        natprobe_server(lab, "--tcp", f"{SERVER_IP}:4040", "--ws", f"{SERVER_IP}:8080")
        result = natprobe_json(lab, "discover", target)
    assert result["lower_s"] <= 3.0 <= result["upper_s"]
    assert result["upper_s"] - result["lower_s"] <= 0.5 + 1e-3
    assert result["failure_mode"] == "silent_drop"
    assert result["nat"]["detected"] is True
    assert result["nat"]["observed"].startswith(ROUTER_OUTSIDE_IP + ":")
    assert result["wall_s"] <= 1.10 * 3 + 2 + result["grace_s"] + 0.5
    # Every connection held at once, within --parallel (32): the control,
    # the planner's 29, the quiet and the kept one; the design connections
    # come on top, one per design.
    conns = result["connections"]
    assert conns["designs"] == (6 if target == WS else 5)
    assert conns["max_open"] <= 32 + conns["designs"] and conns["pool"] == 29
    # Conntrack keeps state per flow: any packet refreshes it, kernel
    # keepalive probes included, so every design kept the flow.
    designs = result["designs"]
    assert all(d["kept"] is True for d in designs.values()), designs
    assert result["middlebox"]["kind"] == "ip_stateful"
    assert result["recommendations"]["linux_sysctl"] is not None
    assert result["recommendations"]["design"] == "tcp_keepalive"
    assert result["total_s"] <= result["wall_s"] + 3.0


def test_designs_at_ten_seconds_add_nothing_to_the_bracket_and_little_to_the_whole(
    kernel_nat: Callable[..., KernelNat],
) -> None:
    # The design step shares the after-expiry step: wall within 1.10 T + 2 s,
    # the whole answer within 3 s more, every design kept by conntrack.
    with kernel_nat(10) as lab:
        natprobe_server(lab, "--tcp", f"{SERVER_IP}:4040")
        result = natprobe_json(lab, "discover", TCP)
    assert result["lower_s"] <= 10.0 <= result["upper_s"]
    assert result["wall_s"] <= 1.10 * 10 + 2.0
    assert result["total_s"] <= result["wall_s"] + 3.0
    assert result["connections"]["max_open"] <= 32 + result["connections"]["designs"] <= 32 + 6
    assert result["middlebox"]["kind"] == "ip_stateful"
    assert result["designs"]["tcp_keepalive"]["kept"] is True
    assert result["designs"]["tcp_keepalive"]["age_s"] > result["upper_s"]


def test_check_passes_below_the_timeout_and_fails_above(kernel_nat: Callable[..., KernelNat]) -> None:
    with kernel_nat(3) as lab:
        natprobe_server(lab, "--tcp", f"{SERVER_IP}:4040")
        below = natprobe_json(lab, "check", TCP, "--idle", "1.5")
        above = natprobe_json(lab, "check", TCP, "--idle", "4.5", expect_rc=1)
    assert below["passed"] is True and below["client_originated"] is False
    assert above["passed"] is False and above["failure_mode"] == "silent_drop"


def test_keepalive_below_the_timeout_keeps_a_connection_well_past_it(kernel_nat: Callable[..., KernelNat]) -> None:
    with kernel_nat(3) as lab:
        natprobe_server(lab, "--tcp", f"{SERVER_IP}:4040")
        kept = natprobe_json(
            lab, "check", TCP, "--idle", "8", "--keepalive-idle", "1", "--keepalive-interval", "1",
            "--keepalive-count", "3",
        )  # fmt: skip
        lost = natprobe_json(
            lab, "check", TCP, "--idle", "8", "--keepalive-idle", "5", "--keepalive-interval", "1",
            "--keepalive-count", "3", expect_rc=1,
        )  # fmt: skip
    assert kept["passed"] is True and kept["client_originated"] is True
    assert kept["tcp_info"]["probes"] == 0  # every probe was answered
    assert lost["passed"] is False


PLAIN_SERVER = (
    "import socket,sys; s=socket.create_server((sys.argv[1], 9000)); print('ready', flush=True); "
    "c,_=s.accept(); c.recv(1)"
)


def test_hold_against_a_plain_server_ends_timeout_at_idle_plus_probes(kernel_nat: Callable[..., KernelNat]) -> None:
    # Timeline: flow forgotten at 2 s; first keepalive probe at 4 s is INVALID
    # for the strict NAT and dropped, so is the next at 5 s; after 2
    # unanswered probes the kernel gives up at 4 + 1 x 2 = 6 s.
    with kernel_nat(2) as lab:
        start_in(lab, "server", [sys.executable, "-c", PLAIN_SERVER, SERVER_IP], ready="ready", stream="stdout")
        result = natprobe_json(
            lab, "hold", f"{SERVER_IP}:9000", "--keepalive-idle", "4", "--keepalive-interval", "1",
            "--keepalive-count", "2", "--duration", "30", expect_rc=1,
        )  # fmt: skip
    assert result["ended"] == "timeout"
    assert result["alive_s"] == pytest.approx(6.0, abs=1.0)
    assert result["tcp_info"]["probes"] >= 1


def test_mid_stream_pickup_fools_client_probes_but_not_server_pushes(kernel_nat: Callable[..., KernelNat]) -> None:
    # With nf_conntrack_tcp_loose=1 a keepalive probe after expiry re-creates
    # the mapping (same port), so a check leaning on it passes although the
    # path forgets idle flows after 2 s. discover, where the server speaks
    # first, still finds the 2 s. The push comes 1 s after the probe that
    # re-created the mapping: the re-created mapping also lives only 2 s, so a
    # push at idle 6 (probe at 4) would race its expiry.
    with kernel_nat(2, loose=True) as lab:
        natprobe_server(lab, "--tcp", f"{SERVER_IP}:4040")
        fooled = natprobe_json(
            lab, "check", TCP, "--idle", "5", "--keepalive-idle", "4", "--keepalive-interval", "1",
            "--keepalive-count", "3",
        )  # fmt: skip
        human = natprobe(lab, "check", TCP, "--idle", "5", "--keepalive-idle", "4")
        truth = natprobe_json(lab, "discover", TCP)
    assert fooled["passed"] is True
    assert fooled["client_originated"] is True and fooled["evidence"] == "server_push_with_client_keepalive"
    assert "come from this side" in human.stdout and human.returncode == 0
    assert truth["lower_s"] <= 2.0 <= truth["upper_s"] and truth["failure_mode"] == "silent_drop"
    assert truth["evidence"] == "server_push"


def test_lab_command_builds_the_namespaces_and_removes_them_on_sigint() -> None:
    import signal
    import subprocess

    from tests.conftest import natprobe_cmd, read_line, scaled

    proc = subprocess.Popen(
        natprobe_cmd("lab", "--nat-timeout", "5"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    first = read_line(proc.stdout)
    client_ns = first.split()[2].rstrip(":")
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert client_ns in listed
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=scaled(20))
    assert proc.returncode == 0
    assert client_ns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
