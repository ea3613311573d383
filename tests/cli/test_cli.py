"""The command line as scripts use it: real processes, JSON on stdout, exit codes."""

from __future__ import annotations

import signal
import socket
import subprocess

import pytest

from tests.conftest import (
    Proc,
    natprobe_cmd,
    output_json,
    port_of,
    read_line,
    run_cli,
    scaled,
    start_emulator,
    start_process,
    validate_output,
)


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    return lines[0]


def test_version_and_module_entry_point() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("natprobe ")


@pytest.mark.parametrize(
    "args",
    [
        ("check", "tcp://127.0.0.1:1", "--idle", "soon"),
        ("discover", "http://127.0.0.1:1"),
        ("discover", "tcp://127.0.0.1:70000"),
        ("schema", "nonsense"),
        ("discover", "tcp://127.0.0.1:1", "--max-idle", "-5"),
        ("emulate", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1", "--idle-timeout", "1", "--mode", "eat"),
        ("hold", "127.0.0.1:99999"),
        ("server",),
        ("discover", "--no-such-flag"),
        ("no-such-command",),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: tuple[str, ...]) -> None:
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("natprobe"), proc.stderr
    assert proc.stdout == ""


def _refused_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    return port


@pytest.mark.parametrize("command", ["discover", "check"])
def test_unreachable_target_exits_3_with_one_line(command: str) -> None:
    args = [command, f"tcp://127.0.0.1:{_refused_port()}", "--json"]
    if command == "check":
        args += ["--idle", "1"]
    proc = run_cli(*args)
    assert proc.returncode == 3
    assert "refused" in _one_line_error(proc)


def test_a_server_that_does_not_speak_the_protocol_exits_3(server_proc: Proc) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        proc = subprocess.Popen(
            natprobe_cmd("discover", f"tcp://127.0.0.1:{port}", "--json"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        conn, _ = listener.accept()
        with conn:
            conn.recv(100)
            conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
            out, err = proc.communicate(timeout=scaled(20))
    assert proc.returncode == 3
    assert "does not speak the natprobe protocol" in err and "Traceback" not in err and out == ""


def test_server_announces_then_stops_cleanly_on_sigterm_and_sigint() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        server = start_process("server", "--tcp", "127.0.0.1:0", ready="listening on")
        assert "sessions" in server.ready_line
        assert server.stop(signum) == 0


def test_check_json_shape_and_exit_0(server_proc: Proc) -> None:
    port = port_of(server_proc.ready_line)
    proc = run_cli("check", f"tcp://127.0.0.1:{port}", "--idle", "300ms", "--json")
    assert proc.returncode == 0, proc.stderr
    result = output_json(proc.stdout)
    assert result["schema"] == "natprobe.check/1"
    assert result["passed"] is True and result["failure_mode"] is None
    assert 0.3 <= result["push_idle_s"] < 0.8


def test_check_fails_with_exit_1_through_an_emulated_nat(server_proc: Proc) -> None:
    emu = start_emulator(server_proc, scaled(0.5))
    try:
        port = port_of(emu.ready_line)
        proc = run_cli("check", f"tcp://127.0.0.1:{port}", "--idle", str(scaled(1.2)), "--grace", "0.5", "--json")
    finally:
        assert emu.stop() == 0
    assert proc.returncode == 1, proc.stderr
    result = output_json(proc.stdout)
    assert result["passed"] is False and result["failure_mode"] == "silent_drop"


def test_hold_json_against_any_tcp_server(server_proc: Proc) -> None:
    port = port_of(server_proc.ready_line)
    proc = run_cli("hold", f"127.0.0.1:{port}", "--duration", "400ms", "--keepalive-idle", "5", "--json")
    assert proc.returncode == 0, proc.stderr
    result = output_json(proc.stdout)
    assert result["schema"] == "natprobe.hold/1"
    assert result["ended"] == "duration" and result["alive_s"] == pytest.approx(0.4, abs=0.15)
    assert result["keepalive_in_force"]["idle_s"] == 5


def test_demo_json_has_discovers_fields_and_the_truth() -> None:
    proc = run_cli("demo", "--nat-timeout", str(scaled(2.0)), "--json")
    assert proc.returncode == 0, proc.stderr
    result = output_json(proc.stdout)
    for key in (
        "schema", "target", "lower_s", "upper_s", "estimate_s", "failure_mode", "wall_s", "probes", "nat",
        "recommended_keepalive_s", "truth_s",
    ):  # fmt: skip
        assert key in result
    assert result["schema"] == "natprobe.discover/1"
    assert result["lower_s"] <= result["truth_s"] <= result["upper_s"]
    assert set(result["nat"]) == {"local", "observed", "detected", "port_preserved"}
    probe = result["probes"][0]
    assert {"idle_s", "outcome", "failure_mode", "timings"} <= set(probe)
    # The emulator terminates TCP: the design connections prove kernel
    # keepalive does not keep it, so the advice leaves the sysctls out.
    designs = validate_output(result)["designs"]
    assert designs["tcp_keepalive"]["kept"] is False and designs["server_keepalive"]["kept"] is False
    assert designs["client_data"]["kept"] is True and designs["heartbeat"]["kept"] is True
    assert result["middlebox"]["kind"] == "tcp_terminating"
    rec = result["recommendations"]
    assert rec["linux_sysctl"] is None and rec["socket_options"] is None and rec["design"] == "client_data"
    assert result["plan"]["keepalive"]["kept"] is False and result["connections"]["designs"] == 5
    # The design step shares the after-expiry step: it adds nothing to the bracket's time.
    assert result["total_s"] <= result["wall_s"] + 3.0


def test_demo_human_output_names_the_bracket_and_truth() -> None:
    proc = run_cli("demo", "--nat-timeout", str(scaled(1.5)), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "Idle timeout between" in proc.stdout and "inside" in proc.stdout
    assert "TCP keepalive does not keep this path" in proc.stdout and "tcp_terminating" in proc.stdout


def test_demo_hung_server_shows_keepalive_blind_and_the_heartbeat_noticing() -> None:
    proc = run_cli("demo", "--hung-server", "--wait", "5s", "--json")
    assert proc.returncode == 0, proc.stderr
    result = validate_output(output_json(proc.stdout))
    assert result["hung_server"]["keepalive"]["noticed_s"] is None
    assert result["hung_server"]["heartbeat"]["noticed_s"] == pytest.approx(3.0, abs=0.5)
    text = run_cli("demo", "--hung-server", "--wait", "5s")
    assert text.returncode == 0, text.stderr
    assert "Kernel keepalive" in text.stdout and "never noticed" in text.stdout
    assert "noticed after 3.0s" in text.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--wait", "4s"), "--wait must be longer than 4s"),
        (("--wait", "soon"), "--wait"),
        (("--ndjson",), "streams no events"),
    ],
)
def test_demo_hung_server_refuses_bad_input_in_one_line(args: tuple[str, ...], message: str) -> None:
    proc = run_cli("demo", "--hung-server", *args)
    assert proc.returncode == 2 and message in _one_line_error(proc)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tcp://127.0.0.1:9", "--confirm", "--budget", "10m"), "longer than --budget 10m"),
        (("tcp://127.0.0.1:9", "--confirm", "--budget", "60s", "--max-idle", "30s"), "raise --budget"),
        (("udp://127.0.0.1:9", "--confirm"), "--confirm is for tcp:// and ws(s):// targets"),
    ],
)
def test_confirm_refuses_a_budget_too_short_for_it_in_one_line(args: tuple[str, ...], message: str) -> None:
    # Refused before anything is dialled (port 9 has no server).
    proc = run_cli("discover", *args)
    assert proc.returncode == 2 and message in _one_line_error(proc)


def test_confirm_takes_a_budget_that_leaves_room() -> None:
    # 30 s: 1.1 x 30 + 2 + 1.5 x 30 = 80 s, so a budget of 80 s passes the
    # check and the run then fails to connect (exit 3), not as a usage error.
    proc = run_cli("discover", "tcp://127.0.0.1:9", "--confirm", "--budget", "80s", "--max-idle", "30s")
    assert proc.returncode == 3 and "--confirm" not in proc.stderr


def test_interrupt_prints_the_partial_result_and_exits_130(server_proc: Proc) -> None:
    port = port_of(server_proc.ready_line)
    proc = subprocess.Popen(
        natprobe_cmd("discover", f"tcp://127.0.0.1:{port}"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    assert "discovering" in read_line(proc.stderr)
    # Wait for the first measured test (about 2 s in), then interrupt.
    assert "survived" in read_line(proc.stderr)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=scaled(20))
    assert proc.returncode == 130, err
    assert "Interrupted" in out and "No timeout seen before the run stopped (interrupted)" in out
    # Nothing failed, so no interval is derived from what merely survived.
    assert "Recommended" not in out and "no timeout was measured" in out


def test_expect_min_exits_1_as_soon_as_the_path_is_proven_shorter(server_proc: Proc) -> None:
    emu = start_emulator(server_proc, scaled(1.0))
    try:
        target = f"tcp://127.0.0.1:{port_of(emu.ready_line)}"
        short = run_cli("discover", target, "--expect-min", "30s", "--json")
        budget = run_cli("discover", target, "--budget", "1.5s", "--json")
    finally:
        emu.stop()
    assert short.returncode == 1, short.stderr
    result = output_json(short.stdout)
    assert result["reason"] == "expect_min" and result["upper_s"] < 30
    assert budget.returncode == 0, budget.stderr
    # The first scout is due at about 1.9 s: the 1.5 s budget ends the run first.
    stopped = output_json(budget.stdout)
    assert stopped["reason"] == "budget" and stopped["upper_s"] is None and 1.4 <= stopped["wall_s"] < 3.0
    assert stopped["recommended_keepalive_s"] is None and stopped["recommendations"] is None
    assert stopped["plan"]["purpose"] == "detect_only" and stopped["plan"]["interval_s"] is None
