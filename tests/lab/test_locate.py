"""locate through two routers: the NAT at hop 1, at hop 2, or state only at
the destination; over WebSocket; and as an unprivileged user.

Timeline per run: conntrack forgets after 2 s; each connection idles 3.2 s
(1.6 T) with keepalive probes every 1 s limited to its TTL; the pushes then
show which TTLs kept the flow.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from probe.lab.netns import HOP2_NEAR_IP, ROUTER_INSIDE_IP, SERVER_IP, HopLab, hop_lab
from probe.testing import KernelNat
from tests.conftest import natprobe_cmd, output_json, scaled, start
from tests.lab.conftest import natprobe_json, natprobe_server

T = 2


@contextmanager
def lab_with_server(stateful: str) -> Iterator[HopLab]:
    with hop_lab(T, stateful) as lab:
        argv = natprobe_cmd("server", "--tcp", f"{SERVER_IP}:4040", "--ws", f"{SERVER_IP}:8080")
        server = start(lab.exec_args(lab.server, argv), "listening on")
        try:
            yield lab
        finally:
            server.stop()


def locate(
    lab: HopLab, target: str, python: list[str] | None = None, user: str | None = None, timeout: bool = True
) -> dict[str, Any]:
    argv = (python or [sys.executable]) + ["-m", "probe", "locate", target, "--json"]
    if timeout:
        argv += ["--timeout", str(T)]
    if user is not None:
        argv = ["runuser", "-u", user, "--", *argv]
    proc = subprocess.run(
        lab.exec_args(lab.client, argv), capture_output=True, text=True, timeout=scaled(90), stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout[-2000:]
    return output_json(proc.stdout)


EXPECTED = {
    "hop1": (
        {"ttl": 1, "address": ROUTER_INSIDE_IP, "scope": "private"},
        False,
        ["failed", "survived", "survived", "survived"],
    ),
    "hop2": (
        {"ttl": 2, "address": HOP2_NEAR_IP, "scope": "private"},
        False,
        ["failed", "failed", "survived", "survived"],
    ),
    "destination": (
        {"ttl": 3, "address": SERVER_IP, "scope": "private"},
        True,
        ["failed", "failed", "failed", "survived"],
    ),
}


@pytest.mark.parametrize("stateful", list(EXPECTED))
def test_locate_names_the_hop_whose_state_expires(stateful: str) -> None:
    hop, at_destination, outcomes = EXPECTED[stateful]
    with lab_with_server(stateful) as lab:
        result = locate(lab, f"tcp://{SERVER_IP}:4040")
    assert [h["address"] for h in result["hops"]] == [ROUTER_INSIDE_IP, HOP2_NEAR_IP, SERVER_IP]
    assert result["expiring_hop"] == hop and result["at_destination"] is at_destination
    assert result["consistent"] is True and result["reason"] == "located"
    # TTL 0 is the baseline without probes: it must fail, or nothing expired.
    assert [r["outcome"] for r in result["rounds"]] == outcomes
    assert result["wall_s"] <= 2.5 * T + 10


def test_without_a_timeout_locate_discovers_it_first() -> None:
    with lab_with_server("hop2") as lab:
        result = locate(lab, f"tcp://{SERVER_IP}:4040", timeout=False)
    # The discovered upper bound: the shortest idle that failed, just above T.
    assert T <= result["timeout_s"] <= T + 0.5
    assert result["expiring_hop"]["ttl"] == 2 and result["wait_s"] == round(1.6 * result["timeout_s"], 3)


def test_locate_over_websocket_uses_the_tcp_socket_under_it() -> None:
    with lab_with_server("hop2") as lab:
        result = locate(lab, f"ws://{SERVER_IP}:8080/natprobe")
    assert result["expiring_hop"]["ttl"] == 2 and result["expiring_hop"]["address"] == HOP2_NEAR_IP


@pytest.fixture(scope="module")
def unprivileged_python() -> Iterator[list[str]]:
    """A venv outside /root that an unprivileged user can run natprobe from."""
    base = shutil.which("python3", path="/usr/bin")
    if base is None:
        pytest.skip("no /usr/bin/python3 for an unprivileged venv")
    root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory(prefix="natprobe-nobody-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=scaled(120))
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", str(root)], check=True, capture_output=True,
            timeout=scaled(300),
        )  # fmt: skip
        Path(tmp).chmod(0o755)
        yield [str(venv / "bin" / "python")]


def test_locate_runs_as_an_unprivileged_user(unprivileged_python: list[str]) -> None:
    with lab_with_server("hop1") as lab:
        result = locate(lab, f"tcp://{SERVER_IP}:4040", python=unprivileged_python, user="nobody")
    assert result["expiring_hop"]["ttl"] == 1 and result["expiring_hop"]["address"] == ROUTER_INSIDE_IP


def test_locate_twice_in_a_row_names_the_same_hops(kernel_nat: Callable[..., KernelNat]) -> None:
    # One router (the test kit's kernel NAT). The first run's test
    # connections are closed at full TTL again, and a silent hop is asked
    # again a second later: the second run still hears from hop 1.
    nat = kernel_nat(T)
    natprobe_server(nat, "--tcp", f"{SERVER_IP}:4040")
    runs = [natprobe_json(nat, "locate", f"tcp://{SERVER_IP}:4040", "--timeout", str(T)) for _ in range(2)]
    for result in runs:
        assert [h["address"] for h in result["hops"]] == [ROUTER_INSIDE_IP, SERVER_IP]
        assert result["expiring_hop"] == {"ttl": 1, "address": ROUTER_INSIDE_IP, "scope": "private"}
