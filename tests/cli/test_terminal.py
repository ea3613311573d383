"""The summary on a real terminal (a pty of 80 and 120 columns), and in a pipe.

On a terminal, long lines wrap at words and keep their indent; in a pipe
every line stays whole, so that scripts can grep it. Only white space may
differ between the two.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios

import pytest

from tests.conftest import natprobe_cmd, scaled, start_process

RENDER = """
from probe.render.console import make_console
from probe.render.discover import render_discover
from tests.render.helpers import sample_discover_result
render_discover(sample_discover_result(), make_console())
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_a_pty(argv: list[str], columns: int) -> str:
    """What ``argv`` shows on a terminal ``columns`` wide (colour codes removed)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(argv, stdin=follower, stdout=follower, stderr=subprocess.PIPE, env=env, close_fds=True)
    os.close(follower)
    chunks: list[bytes] = []
    try:
        for _ in range(10_000):  # bounded: the render is a few kilobytes
            ready, _, _ = select.select([leader], [], [], scaled(15))
            if not ready:
                raise AssertionError("no output from the pty within the time")
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
        _, err = proc.communicate(timeout=scaled(15))
    assert proc.returncode == 0, err
    return ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


@pytest.mark.parametrize("columns", [80, 120])
def test_the_summary_wraps_at_words_to_the_terminal_and_stays_whole_in_a_pipe(columns: int) -> None:
    argv = [sys.executable, "-c", RENDER]
    shown = on_a_pty(argv, columns)
    piped = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=scaled(30)).stdout
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= columns
    # Wrapping happened, and changed nothing but white space.
    assert max(len(line) for line in piped.splitlines()) > columns
    assert len(lines) > len(piped.splitlines())
    assert shown.split() == piped.split()
    # Every line but the title keeps an indent: wrapped text stays in its section.
    assert all(line.startswith("  ") for line in lines[1:] if line.strip())


SURVEY = """
from probe.render.console import make_console
from probe.render.survey import render_survey
from tests.render.helpers import sample_survey
render_survey(sample_survey(), make_console())
"""


@pytest.mark.parametrize("columns", [80, 120])
def test_the_survey_table_fits_the_terminal_and_keeps_a_row_a_line_in_a_pipe(columns: int) -> None:
    argv = [sys.executable, "-c", SURVEY]
    shown = on_a_pty(argv, columns).splitlines()
    piped = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=scaled(30)).stdout.splitlines()
    assert max(len(line) for line in shown) <= columns
    # No value is cut or broken: each cell's text is whole on the terminal.
    for cell in ("1h 59m - 2h 00m", "59.5s - 1m 00.6s", "silent_drop", "blackhole", "1h 35m", "47.0s", "IPv6"):
        assert cell in "\n".join(shown), cell
    # In a pipe, one line per path, whatever its length, for grep.
    rows = [line for line in piped if line.startswith(("tcp://", "wss://"))]
    assert len(rows) == 4
    assert "wss://probe.example.net/natprobe" in rows[2] and rows[2].split()[-1] == "47.0s"
    assert rows[3].split()[:3] == ["tcp://probe.example.net:5222", "-", "5222"]
    assert "path 4 not measured: connection to probe.example.net:5222 refused" in " ".join(" ".join(shown).split())
    # The intervals are derived, not tried, and the summary says so.
    assert "Keepalive intervals come from each bracket and were not tried on the paths" in " ".join(piped)


def test_a_udp_discovery_on_a_terminal_draws_a_live_block_per_flow_state() -> None:
    server = start_process("server", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", ready="listening on")
    try:
        match = re.search(r"tcp 127\.0\.0\.1:(\d+), udp 127\.0\.0\.1:(\d+)", server.ready_line)
        assert match, server.ready_line
        tcp, udp = match.groups()
        argv = natprobe_cmd(
            "discover", f"udp://127.0.0.1:{udp}", "--control", f"tcp://127.0.0.1:{tcp}", "--max-idle", "2s", "--no-save"
        )
        shown = on_a_pty(argv, 120)
    finally:
        server.stop()
    # The live view's frames went by before the summary replaced them.
    for state in ("unreplied", "replied", "stream"):
        assert f"{state}: Bracket: survived up to" in shown, state
    assert "natprobe discover udp://127.0.0.1:" in shown and "Elapsed" in shown
