"""check and discover as monitoring plugins: --nagios lines and codes, --textfile metrics."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Proc, port_of, run_cli, scaled, start_emulator


@pytest.fixture
def forgetting(server_proc: Proc) -> Iterator[str]:
    """A path that forgets idle flows after 0.5 s (scaled)."""
    emu = start_emulator(server_proc, scaled(0.5))
    yield f"tcp://127.0.0.1:{port_of(emu.ready_line)}"
    emu.stop()


def nagios(*args: str) -> tuple[int, str]:
    proc = run_cli(*args, "--nagios", "--no-save")
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and proc.stderr == "", (proc.stdout, proc.stderr)
    assert lines[0].startswith("NATPROBE ")
    return proc.returncode, lines[0]


def test_a_surviving_check_is_ok_with_perfdata(server_proc: Proc) -> None:
    code, line = nagios("check", f"tcp://127.0.0.1:{port_of(server_proc.ready_line)}", "--idle", "200ms")
    assert code == 0 and line.startswith("NATPROBE OK - an idle of 0.2s survived on tcp://127.0.0.1:")
    assert line.endswith("s;;;0") and "'idle'=0.2s;;;0 'alive'=" in line


def test_a_dropped_flow_is_critical(forgetting: str) -> None:
    code, line = nagios("check", forgetting, "--idle", str(scaled(1.0)), "--grace", "0.3")
    assert code == 2 and line.startswith("NATPROBE CRITICAL - an idle of") and ": silent_drop |" in line


def test_a_bracket_below_expect_min_is_critical(forgetting: str) -> None:
    code, line = nagios("discover", forgetting, "--expect-min", "30s")
    assert code == 2 and line.startswith("NATPROBE CRITICAL - idle timeout on") and "below the expected 30s" in line
    assert "'upper'=" in line and ";;30:;0" in line


def test_a_refused_target_is_critical_not_unknown() -> None:
    import socket

    with socket.socket() as held:  # bound, not listening: refuses
        held.bind(("127.0.0.1", 0))
        code, line = nagios("check", f"tcp://127.0.0.1:{held.getsockname()[1]}", "--idle", "1")
    assert code == 2 and line.startswith("NATPROBE CRITICAL - connection to 127.0.0.1:") and line.endswith("refused")


@pytest.mark.parametrize(
    "args",
    [("check", "tcp://127.0.0.1:1", "--idle", "soon"), ("discover", "tcp://127.0.0.1:1", "--bogus"), ("check", "x")],
)
def test_usage_errors_are_unknown(args: tuple[str, ...]) -> None:
    code, line = nagios(*args)
    assert code == 3 and line.startswith("NATPROBE UNKNOWN - ")


def metrics(path: Path) -> dict[tuple[str, str], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            out[(sample.name, sample.labels.get("probe", ""))] = sample.value
    return out


def test_textfile_metrics_accumulate_over_runs_and_count_errors(server_proc: Proc, tmp_path: Path) -> None:
    path = tmp_path / "natprobe.prom"
    target = f"tcp://127.0.0.1:{port_of(server_proc.ready_line)}"
    args = ("--textfile", str(path), "--probe-name", "short", "--no-save")
    assert run_cli("check", target, "--idle", "200ms", *args).returncode == 0
    first = metrics(path)
    assert first[("natprobe_check_success", "short")] == 1.0
    assert first[("natprobe_check_idle_seconds", "short")] == pytest.approx(0.2)
    assert first[("natprobe_runs_total", "short")] == 1.0 and first[("natprobe_run_errors_total", "short")] == 0.0
    assert run_cli("check", target, "--idle", "200ms", *args).returncode == 0
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        refused = run_cli("check", f"tcp://127.0.0.1:{held.getsockname()[1]}", "--idle", "1", *args)
    assert refused.returncode == 3
    last = metrics(path)
    assert last[("natprobe_runs_total", "short")] == 3.0 and last[("natprobe_run_errors_total", "short")] == 1.0
    # The failed run leaves no check result, but keeps the last success time.
    assert ("natprobe_check_success", "short") not in last
    assert (
        last[("natprobe_last_success_timestamp_seconds", "short")]
        >= first[("natprobe_last_success_timestamp_seconds", "short")]
    )


@pytest.mark.requires("promtool")
def test_promtool_finds_nothing_to_complain_about(server_proc: Proc, tmp_path: Path) -> None:
    path = tmp_path / "natprobe.prom"
    target = f"tcp://127.0.0.1:{port_of(server_proc.ready_line)}"
    assert (
        run_cli("discover", target, "--budget", "1s", "--textfile", str(path), "--no-save", "--quiet").returncode == 0
    )
    lint = subprocess.run(["promtool", "check", "metrics"], input=path.read_text(), capture_output=True, text=True)
    assert lint.returncode == 0 and lint.stdout == "" and lint.stderr == "", (lint.stdout, lint.stderr)


def test_an_unwritable_textfile_is_a_usage_error(server_proc: Proc, tmp_path: Path) -> None:
    target = f"tcp://127.0.0.1:{port_of(server_proc.ready_line)}"
    proc = run_cli("check", target, "--idle", "100ms", "--textfile", str(tmp_path / "no" / "such" / "dir.prom"))
    assert proc.returncode == 2 and proc.stderr.startswith("natprobe: cannot write --textfile")
    assert proc.stdout == ""  # refused before the check ran
