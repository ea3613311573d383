"""The UDP parts of the command line: usage errors, a server without UDP, and
JSON that validates (a subprocess each, against a real server on loopback)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.conftest import output_json, port_of, run_cli, start_process


@pytest.fixture
def udp_server() -> Iterator[tuple[int, int]]:
    """A server's (TCP, UDP) ports, each picked by the kernel."""
    proc = start_process("server", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", ready="listening on")
    match = re.search(r"tcp 127\.0\.0\.1:(\d+), udp 127\.0\.0\.1:(\d+)", proc.ready_line)
    assert match, proc.ready_line
    try:
        yield int(match.group(1)), int(match.group(2))
    finally:
        proc.stop()


def test_discover_udp_reports_states_and_validates(udp_server: tuple[int, int]) -> None:
    tcp, udp = udp_server
    control = f"tcp://127.0.0.1:{tcp}"
    proc = run_cli(
        "discover", f"udp://127.0.0.1:{udp}", "--control", control, "--max-idle", "2s", "--json", "--no-save"
    )
    assert proc.returncode == 0, proc.stderr
    result = output_json(proc.stdout)
    assert result["transport"] == "udp" and result["reason"] == "max_idle"
    assert result["control"] == control and result["target"] == f"udp://127.0.0.1:{udp}"
    assert set(result["states"]) == {"unreplied", "replied", "stream"}
    assert all(s["upper_s"] is None and s["lower_s"] >= 2.0 for s in result["states"].values())
    # Nothing failed: no timeout, so no interval and no inbound-refresh verdict.
    assert result["recommendations"] is None and result["inbound_refresh"] is None
    assert result["nat"]["detected"] is False


def test_check_udp_passes_on_loopback_and_prints_the_state(udp_server: tuple[int, int]) -> None:
    tcp, udp = udp_server
    proc = run_cli("check", f"udp://127.0.0.1:{udp}", "--control", f"tcp://127.0.0.1:{tcp}", "--idle", "0.5s",
                   "--udp-state", "unreplied", "--no-save")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "PASSED" in proc.stdout and "unreplied" in proc.stdout


def test_a_server_without_udp_is_named_with_the_fix() -> None:
    proc = start_process("server", "--tcp", "127.0.0.1:0", ready="listening on")
    try:
        port = port_of(proc.ready_line)
        for command in (("discover", f"udp://127.0.0.1:{port}"), ("check", f"udp://127.0.0.1:{port}", "--idle", "1")):
            result = run_cli(*command, "--no-save")
            assert result.returncode == 3
            assert result.stderr.strip() == (
                f"natprobe: 127.0.0.1:{port} answers no UDP probes: start it with --udp 127.0.0.1:{port}"
            )
    finally:
        proc.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("server", "--udp", "127.0.0.1:0"), "--udp needs a --tcp or --ws listener too"),
        (("server", "--tcp", "127.0.0.1:0", "--udp", "nohost:"), "invalid --udp address"),
        (("discover", "tcp://127.0.0.1:1", "--control", "tcp://127.0.0.1:2"), "--control is for udp:// targets only"),
        (("discover", "udp://127.0.0.1:1", "--control", "udp://127.0.0.1:2"), "unsupported scheme 'udp'"),
        (("check", "tcp://127.0.0.1:1", "--idle", "1", "--udp-state", "stream"), "--udp-state is for udp://"),
        (("check", "udp://127.0.0.1:1", "--idle", "1", "--keepalive-idle", "5"), "are for tcp:// and ws:// targets"),
        (("check", "udp://127.0.0.1:1", "--idle", "1", "--udp-state", "bound"), "'bound' is not one of"),
    ],
)
def test_udp_usage_errors_are_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_the_ip_version_of_a_udp_discovery_is_the_family_its_probes_use() -> None:
    proc = start_process("server", "--tcp", "[::1]:0", "--udp", "[::1]:0", ready="listening on")
    try:
        match = re.search(r"tcp \[::1\]:(\d+), udp \[::1\]:(\d+)", proc.ready_line)
        assert match, proc.ready_line
        tcp, udp = match.groups()
        run = run_cli(
            "discover", f"udp://[::1]:{udp}", "--control", f"tcp://[::1]:{tcp}", "--max-idle", "1s", "--json",
            "--no-save",
        )  # fmt: skip
    finally:
        proc.stop()
    assert run.returncode == 0, run.stderr
    assert output_json(run.stdout)["plan"]["ip_version"] == 6


def test_parallel_counts_every_udp_probe_at_once(udp_server: tuple[int, int]) -> None:
    tcp, udp = udp_server
    args = ("discover", f"udp://127.0.0.1:{udp}", "--control", f"tcp://127.0.0.1:{tcp}", "--max-idle", "1s")
    proc = run_cli(*args, "--parallel", "14", "--json", "--no-save")
    assert proc.returncode == 0, proc.stderr
    connections = output_json(proc.stdout)["connections"]
    # 14 in all: the control connection, the refresh probe and 4 per state;
    # the two design probes come on top of --parallel.
    assert connections["pool"] == 4 and connections["designs"] == 2
    assert connections["max_open"] <= 14 + connections["designs"]
    too_few = run_cli(*args, "--parallel", "7", "--json")
    assert too_few.returncode == 2 and too_few.stdout == ""
    assert too_few.stderr.strip().splitlines() == [
        "natprobe: --parallel: udp:// needs at least 8 connections at once, got 7"
    ]
