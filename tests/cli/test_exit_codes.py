"""Every cell of the README's exit-code table, run for real.

The table is parsed from README.md: a cell added there without a scenario
here, or a scenario without its cell, fails the first test.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from tests.conftest import Proc, natprobe_cmd, port_of, read_line, run_cli, scaled, start, start_emulator, start_process

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_table() -> dict[str, set[int]]:
    """command -> the exit codes its row documents."""
    text = README.read_text(encoding="utf-8")
    header = re.search(r"^\| command \| (.+) \|$", text, re.MULTILINE)
    assert header is not None
    codes = [int(c.strip()) for c in header.group(1).split("|")]
    table: dict[str, set[int]] = {}
    for row in re.findall(r"^\| ([a-z]+) \| (.+) \|$", text[header.end() :], re.MULTILINE):
        cells = [c.strip() for c in row[1].split("|")]
        table[row[0]] = {code for code, cell in zip(codes, cells, strict=True) if cell != "-"}
    return table


@contextmanager
def refused_port() -> Iterator[int]:
    """A port that refuses connections: bound but not listening, held for the test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@contextmanager
def busy_port() -> Iterator[int]:
    """A port someone already listens on."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock.getsockname()[1]


@contextmanager
def natprobe_server() -> Iterator[int]:
    proc = start_process("server", "--tcp", "127.0.0.1:0", ready="listening on")
    try:
        yield port_of(proc.ready_line)
    finally:
        proc.stop()


def interrupted(*args: str, ready: str) -> int:
    """Run natprobe, wait for a line of its progress on stderr, press Ctrl-C."""
    proc = subprocess.Popen(
        natprobe_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    assert proc.stderr is not None
    # Its own progress line is the ready signal; bounded by the test timeout.
    line = read_line(proc.stderr)
    assert ready in line, line
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=scaled(30))
    return proc.returncode


def stopped(*args: str) -> int:
    proc = start_process(*args, ready="listening on")
    return proc.stop(signal.SIGTERM)


def rc(*args: str, env: dict[str, str] | None = None) -> int:
    proc = run_cli(*args, env=env)
    # An error (usage, unreachable) is one line and never a traceback; 1 is
    # a measured verdict, printed as a result.
    assert "Traceback" not in proc.stderr
    if proc.returncode in (2, 3):
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("natprobe"), proc.stderr
    return proc.returncode


def discover_0() -> int:
    with natprobe_server() as port:
        return rc("discover", f"tcp://127.0.0.1:{port}", "--budget", "1s", "--json", "--no-save")


def discover_1() -> int:
    server = start_process("server", "--tcp", "127.0.0.1:0", ready="listening on")
    emu = start_emulator(server, scaled(1.0))
    try:
        return rc(
            "discover", f"tcp://127.0.0.1:{port_of(emu.ready_line)}", "--expect-min", "30s", "--json", "--no-save"
        )
    finally:
        emu.stop()
        server.stop()


def discover_3() -> int:
    with refused_port() as port:
        return rc("discover", f"tcp://127.0.0.1:{port}")


def discover_130() -> int:
    with natprobe_server() as port:
        return interrupted("discover", f"tcp://127.0.0.1:{port}", "--no-save", ready="discovering")


def two_port_server() -> tuple[Proc, list[int]]:
    """One natprobe server on two ports (--tcp twice), as a port survey needs."""
    proc = start_process("server", "--tcp", "127.0.0.1:0", "--tcp", "127.0.0.1:0", ready="listening on")
    ports = [int(p) for p in re.findall(r"tcp 127\.0\.0\.1:(\d+)", proc.ready_line)]
    assert len(ports) == 2, proc.ready_line
    return proc, ports


def survey_0() -> int:
    server, ports = two_port_server()
    try:
        targets = [f"tcp://127.0.0.1:{port}" for port in ports]
        return rc("survey", *targets, "--budget", "1s", "--json")
    finally:
        server.stop()


def survey_1() -> int:
    server = start_process("server", "--tcp", "127.0.0.1:0", ready="listening on")
    emu = start_emulator(server, scaled(1.0))
    try:
        target = f"tcp://127.0.0.1:{port_of(emu.ready_line)}"
        return rc("survey", target, "--expect-min", "30s", "--json")
    finally:
        emu.stop()
        server.stop()


def survey_3() -> int:
    with refused_port() as port, natprobe_server() as live:
        return rc("survey", f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{live}", "--budget", "1s", "--json")


def survey_130() -> int:
    with natprobe_server() as port:
        return interrupted("survey", f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{port}", ready="discovering")


def check_0() -> int:
    with natprobe_server() as port:
        return rc("check", f"tcp://127.0.0.1:{port}", "--idle", "200ms", "--no-save")


def check_1() -> int:
    server = start_process("server", "--tcp", "127.0.0.1:0", ready="listening on")
    emu = start_emulator(server, scaled(0.5))
    try:
        port = port_of(emu.ready_line)
        return rc("check", f"tcp://127.0.0.1:{port}", "--idle", str(scaled(1.0)), "--grace", "0.3", "--no-save")
    finally:
        emu.stop()
        server.stop()


def check_3() -> int:
    with refused_port() as port:
        return rc("check", f"tcp://127.0.0.1:{port}", "--idle", "1")


def interrupted_once_connected(port: int, *args: str) -> int:
    """Run natprobe against ``port``; Ctrl-C once it is connected (check and
    hold print nothing while they wait, so the connection is the signal)."""
    proc = subprocess.Popen(
        natprobe_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    try:
        wait_for_connection(port)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=scaled(30))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode


def check_130() -> int:
    with natprobe_server() as port:
        return interrupted_once_connected(port, "check", f"tcp://127.0.0.1:{port}", "--idle", "60", "--no-save")


def wait_for_connection(port: int) -> None:
    """Until this host shows an established connection to ``port``: bounded."""
    deadline = time.monotonic() + scaled(10)
    while time.monotonic() < deadline:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == port and conn.status == psutil.CONN_ESTABLISHED:
                return
        time.sleep(0.02)
    raise AssertionError("no connection appeared")


def hold_0() -> int:
    with natprobe_server() as port:
        return rc("hold", f"127.0.0.1:{port}", "--duration", "300ms")


def hold_1() -> int:
    # A server that accepts and closes at once: the hold ends sooner.
    code = (
        "import socket; s=socket.create_server(('127.0.0.1',0)); print(s.getsockname()[1], flush=True); "
        "c,_=s.accept(); c.close()"
    )
    server = start([sys.executable, "-c", code], ready="", stream="stdout")
    try:
        return rc("hold", f"127.0.0.1:{server.ready_line}", "--duration", "30s")
    finally:
        server.stop()


def hold_3() -> int:
    with refused_port() as port:
        return rc("hold", f"127.0.0.1:{port}")


def hold_130() -> int:
    with natprobe_server() as port:
        return interrupted_once_connected(port, "hold", f"127.0.0.1:{port}", "--duration", "60s")


def demo_0() -> int:
    return rc("demo", "--nat-timeout", str(scaled(1.0)), "--json")


def demo_130() -> int:
    return interrupted("demo", "--nat-timeout", "30", ready="discovering")


def server_0() -> int:
    return stopped("server", "--tcp", "127.0.0.1:0")


def server_3() -> int:
    with busy_port() as port:
        return rc("server", "--tcp", f"127.0.0.1:{port}")


def emulate_0() -> int:
    with refused_port() as upstream:
        return stopped(
            "emulate", "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{upstream}", "--idle-timeout", "1"
        )


def emulate_3() -> int:
    with busy_port() as port, refused_port() as upstream:
        return rc(
            "emulate", "--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{upstream}", "--idle-timeout", "1"
        )


def lab_0() -> int:
    proc = subprocess.Popen(natprobe_cmd("lab", "--nat-timeout", "5"), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert "client namespace" in read_line(proc.stdout)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=scaled(30))
    return proc.returncode


def lab_3() -> int:
    # Without `ip` and `nft` on PATH the lab cannot be built, root or not.
    return rc("lab", "--nat-timeout", "5", env={"PATH": "/nonexistent"})


def exporter_config(tmp: Path, target: str = "tcp://127.0.0.1:1") -> str:
    path = tmp / "exporter.yml"
    path.write_text(f"probes:\n  - name: p\n    target: {target}\n    check: {{idle: 1s}}\n    every: 1h\n")
    return str(path)


def exporter_0() -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, refused_port() as port:
        config = exporter_config(Path(tmp), f"tcp://127.0.0.1:{port}")
        return stopped("exporter", "--config", config, "--listen", "127.0.0.1:0")


def exporter_3() -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, busy_port() as port:
        return rc("exporter", "--config", exporter_config(Path(tmp)), "--listen", f"127.0.0.1:{port}")


def locate_0() -> int:
    from probe.lab.netns import SERVER_IP, hop_lab

    with hop_lab(2, "hop2") as lab:
        server = start(lab.exec_args(lab.server, natprobe_cmd("server", "--tcp", f"{SERVER_IP}:4040")), "listening on")
        try:
            proc = subprocess.run(
                lab.exec_args(lab.client, natprobe_cmd("locate", f"tcp://{SERVER_IP}:4040", "--timeout", "2")),
                capture_output=True, text=True, timeout=scaled(60), stdin=subprocess.DEVNULL,
            )  # fmt: skip
        finally:
            server.stop()
    return proc.returncode


def locate_1() -> int:
    # Loopback forgets nothing: the baseline survives and no hop can be named.
    with natprobe_server() as port:
        return rc("locate", f"tcp://127.0.0.1:{port}", "--timeout", "0.6")


def locate_3() -> int:
    with refused_port() as port:
        return rc("locate", f"tcp://127.0.0.1:{port}", "--timeout", "1")


def locate_130() -> int:
    with natprobe_server() as port:
        return interrupted_once_connected(port, "locate", f"tcp://127.0.0.1:{port}", "--timeout", "60")


SCENARIOS: dict[tuple[str, int], Callable[[], int]] = {
    ("discover", 0): discover_0,
    ("discover", 1): discover_1,
    ("discover", 2): lambda: rc("discover", "tcp://127.0.0.1:1", "--parallel", "2"),
    ("discover", 3): discover_3,
    ("discover", 130): discover_130,
    ("check", 0): check_0,
    ("check", 1): check_1,
    ("check", 2): lambda: rc("check", "tcp://127.0.0.1:1"),
    ("check", 3): check_3,
    ("check", 130): check_130,
    ("hold", 0): hold_0,
    ("hold", 1): hold_1,
    ("hold", 2): lambda: rc("hold", "127.0.0.1:1", "--duration", "soon"),
    ("hold", 3): hold_3,
    ("hold", 130): hold_130,
    ("demo", 0): demo_0,
    ("demo", 2): lambda: rc("demo", "--mode", "eat"),
    ("demo", 130): demo_130,
    ("server", 0): server_0,
    ("server", 2): lambda: rc("server"),
    ("server", 3): server_3,
    ("emulate", 0): emulate_0,
    ("emulate", 2): lambda: rc("emulate", "--listen", "127.0.0.1:0"),
    ("emulate", 3): emulate_3,
    ("local", 0): lambda: rc("local", "--json"),
    ("local", 2): lambda: rc("local", "--frobnicate"),
    ("history", 0): lambda: rc("history", "--json"),
    ("history", 2): lambda: rc("history", "--frobnicate"),
    ("schema", 0): lambda: rc("schema", "check"),
    ("schema", 2): lambda: rc("schema", "nonsense"),
    ("lab", 0): lab_0,
    ("lab", 2): lambda: rc("lab", "--nat-timeout", "0.5"),
    ("lab", 3): lab_3,
    ("exporter", 0): exporter_0,
    ("exporter", 2): lambda: rc("exporter", "--config", "/nonexistent/exporter.yml"),
    ("exporter", 3): exporter_3,
    ("locate", 0): locate_0,
    ("locate", 1): locate_1,
    ("locate", 2): lambda: rc("locate", "tcp://127.0.0.1:1", "--max-hops", "0"),
    ("locate", 3): locate_3,
    ("locate", 130): locate_130,
    ("survey", 0): survey_0,
    ("survey", 1): survey_1,
    ("survey", 2): lambda: rc("survey", "tcp://127.0.0.1:1", "--family", "5"),
    ("survey", 3): survey_3,
    ("survey", 130): survey_130,
}


def test_the_table_and_the_scenarios_name_the_same_cells() -> None:
    documented = {(command, code) for command, codes in readme_table().items() for code in codes}
    assert documented == set(SCENARIOS)


#: Cells that need a lab prerequisite (see tests/conftest.py ``requires``).
NEEDS = {("lab", 0): ("kernel_nat",), ("locate", 0): ("kernel_nat",)}


@pytest.mark.parametrize(
    ("command", "code"),
    [pytest.param(*cell, marks=pytest.mark.requires(*NEEDS.get(cell, ()))) for cell in sorted(SCENARIOS)],
    ids=lambda v: str(v),
)
def test_exit_code(command: str, code: int) -> None:
    assert SCENARIOS[(command, code)]() == code


def test_a_usage_error_found_while_running_is_still_2_not_3() -> None:
    # The keepalive count is checked when the option is set on the socket,
    # inside the run: common.run must keep the error's own exit code.
    with natprobe_server() as port:
        assert rc("hold", f"127.0.0.1:{port}", "--keepalive-count", "200") == 2
        assert rc("check", f"tcp://127.0.0.1:{port}", "--idle", "1", "--keepalive-count", "0") == 2
