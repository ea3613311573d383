"""local, history, help, completion, and the live view under a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

import pytest

from probe.core.history import CheckSummary, DiscoverSummary, changed, grouped, path_key
from probe.core.results import DiscoverResult
from probe.run import history
from tests.conftest import Proc, natprobe_cmd, output_json, port_of, run_cli, scaled
from tests.factories import check_result, discover_result


def test_local_json_shape_and_kernel_defaults() -> None:
    proc = run_cli("local", "--json")
    assert proc.returncode == 0, proc.stderr
    facts = output_json(proc.stdout)
    assert facts["schema"] == "natprobe.local/1"
    assert set(facts["keepalive_defaults"]) == {"idle_s", "interval_s", "count"}
    if Path("/proc/sys/net/ipv4/tcp_keepalive_time").exists():
        assert facts["keepalive_defaults"]["idle_s"] == int(Path("/proc/sys/net/ipv4/tcp_keepalive_time").read_text())
    names = {i["name"] for i in facts["interfaces"]}
    assert "lo" in names or any(a["scope"] == "loopback" for i in facts["interfaces"] for a in i["addresses"])
    assert all({"name", "addresses"} <= set(i) for i in facts["interfaces"])


def test_local_lists_the_sockets_of_a_running_natprobe(server_proc: Proc) -> None:
    facts = output_json(run_cli("local", "--json").stdout)
    server_pid = server_proc.proc.pid
    entry = next(p for p in facts["natprobe_sockets"] if p["pid"] == server_pid)
    assert entry["sockets"] >= 1 and entry["states"].get("LISTEN", 0) >= 1


def test_history_compares_a_new_result_with_the_previous_on_the_same_path(tmp_path: Path) -> None:
    file = tmp_path / "h.jsonl"

    def found(lower: float, upper: float) -> DiscoverResult:
        return discover_result(lower, upper, target="tcp://x:1", observed="203.0.113.9:4000")

    first = history.record(found(340.0, 350.0), file)
    same = history.record(found(345.0, 352.0), file)
    moved = history.record(found(110.0, 115.0), file)
    assert first.previous is None and first.saved
    assert same.changed is False and same.previous is not None
    assert isinstance(same.previous.summary, DiscoverSummary) and same.previous.summary.upper_s == 350.0
    assert moved.changed is True
    # Another kind on the same path is compared only with its own kind.
    check = history.record(check_result(target="tcp://x:1", nat=found(1.0, 2.0).nat), file)
    assert check.previous is None and check.path == moved.path
    groups = grouped(history.load(file))
    assert [(g.kind, g.changed, len(g.entries)) for g in groups] == [("discover", True, 3), ("check", False, 1)]
    # A damaged line is skipped; the rest still reads.
    with file.open("a") as handle:
        handle.write("{not json\n")
    assert len(history.load(file)) == 4


def test_history_paths_differ_by_public_address() -> None:
    assert path_key("t", "203.0.113.9:1", "eth0") != path_key("t", "198.51.100.7:1", "eth0")
    assert path_key("t", "[2001:db8::1]:443", None).observed_ip == "2001:db8::1"
    assert changed(CheckSummary(60, True, None, None), CheckSummary(60, False, "silent_drop", None))


def test_check_saves_history_unless_told_not_to(server_proc: Proc) -> None:
    target = f"tcp://127.0.0.1:{port_of(server_proc.ready_line)}"
    first = output_json(run_cli("check", target, "--idle", "0.1", "--json").stdout)
    second = output_json(run_cli("check", target, "--idle", "0.1", "--json").stdout)
    unsaved = output_json(run_cli("check", target, "--idle", "0.1", "--json", "--no-save").stdout)
    assert first["history"]["saved"] and first["history"]["previous"] is None
    assert second["history"]["previous"]["passed"] is True and second["history"]["changed"] is False
    assert "history" not in unsaved
    listing = output_json(run_cli("history", "--json").stdout)
    assert listing["schema"] == "natprobe.history/1"
    assert [len(p["entries"]) for p in listing["paths"]] == [2]
    assert Path(os.environ["XDG_STATE_HOME"], "natprobe", "history.jsonl").exists()


COMMANDS = [
    "server",
    "discover",
    "check",
    "hold",
    "emulate",
    "demo",
    "local",
    "history",
    "lab",
    "schema",
    "exporter",
    "locate",
    "survey",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_has_examples(command: str) -> None:
    proc = run_cli(command, "--help")
    assert proc.returncode == 0 and "Examples" in proc.stdout and "natprobe " + command in proc.stdout


def test_the_command_list_shows_one_sentence_per_command_and_no_examples() -> None:
    from probe.cli.app import app

    proc = run_cli("--help", env={"COLUMNS": "200"})
    assert proc.returncode == 0 and "Examples" not in proc.stdout
    listed = {info.name: info.callback for info in app.registered_commands}
    assert sorted(listed) == sorted(COMMANDS)
    for name, callback in listed.items():
        assert callback is not None and callback.__doc__
        summary = callback.__doc__.strip().splitlines()[0]
        # Reads on its own: a sentence, short enough for one line of the list.
        assert summary[0].isupper() and summary.endswith(".") and len(summary) <= 110, summary
        assert f"{name}  " in proc.stdout and summary in proc.stdout


def test_version_and_completion_are_offered() -> None:
    assert run_cli("--version").stdout.strip().startswith("natprobe 0.")
    assert "--install-completion" in run_cli("--help").stdout
    proc = run_cli("--show-completion", env={"SHELL": "/bin/bash"})
    assert proc.returncode == 0 and "complete" in proc.stdout


def _run_in_pty(args: list[str], env: dict[str, str], limit_s: float = 60.0) -> tuple[int, str]:
    """Run natprobe on a pseudo-terminal; return its exit code and all it wrote."""
    main, secondary = pty.openpty()
    proc = subprocess.Popen(
        natprobe_cmd(*args), stdin=secondary, stdout=secondary, stderr=secondary,
        env={**os.environ, "COLUMNS": "100", "LINES": "40", "TERM": "xterm-256color", **env},
    )  # fmt: skip
    os.close(secondary)
    chunks = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 1.0)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            data = os.read(main, 65536)
        except OSError:  # the other side closed: the process is done
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    return proc.wait(timeout=scaled(10)), b"".join(chunks).decode("utf-8", "replace")


def test_live_view_appears_on_a_terminal_and_finishes_cleanly() -> None:
    code, out = _run_in_pty(["demo", "--nat-timeout", str(scaled(1.5))], env={})
    assert code == 0
    assert "Elapsed" in out and "idle age" in out  # the live view was drawn
    assert out.rfind("\x1b[?25h") > out.find("\x1b[?25l") >= 0  # cursor hidden, then shown again
    assert "Idle timeout between" in out.split("\x1b[?25h")[-1]  # the summary comes after it
    assert "\x1b[32m" in out  # colour on a terminal...


def test_no_color_is_respected() -> None:
    code, out = _run_in_pty(["demo", "--nat-timeout", str(scaled(1.5))], env={"NO_COLOR": "1"})
    assert code == 0 and "Idle timeout between" in out
    # NO_COLOR forbids colour; bold and cursor control stay.
    assert not re.search(r"\x1b\[[0-9;]*(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])m", out)


def test_no_live_view_with_json_even_on_a_terminal() -> None:
    code, out = _run_in_pty(["demo", "--nat-timeout", str(scaled(1.5)), "--json"], env={})
    assert code == 0 and "Elapsed" not in out and '"schema": "natprobe.discover/1"' in out
