"""natprobe exporter scraped by a real Prometheus (Debian's package).

Timeline: the emulated NAT forgets flows idle for 1 s (scaled). The exporter
checks 0.3 s (survives) and 2 s (dropped) idles and runs a discovery; a
Prometheus scraping every second must then answer queries for all three.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import Proc, port_of, scaled, start_emulator, start_process

pytestmark = [pytest.mark.lab, pytest.mark.requires("prometheus")]

T = scaled(1.0)


def listening_port(pid: int, within_s: float) -> int:
    """The port a process bound (it was told port 0): read from the kernel."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN:
                return int(conn.laddr.port)
        time.sleep(0.05)
    raise AssertionError("prometheus did not listen")


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=scaled(5)) as reply:
            return int(reply.status), reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@pytest.fixture
def exporter(server_proc: Proc, tmp_path: Path) -> Iterator[int]:
    emu = start_emulator(server_proc, T)
    target = f"tcp://127.0.0.1:{port_of(emu.ready_line)}"
    config = tmp_path / "exporter.yml"
    config.write_text(
        f"""\
start_spread: 1s
concurrency: 3
probes:
  - name: short
    target: {target}
    check: {{idle: {scaled(0.3)}, grace: 0.3s}}
    every: 2s
  - name: long
    target: {target}
    check: {{idle: {2 * T}, grace: 0.3s}}
    every: 5s
  - name: find
    target: {target}
    discover: {{max_idle: {5 * T}}}
    every: 1h
"""
    )
    proc = start_process("exporter", "--config", str(config), "--listen", "127.0.0.1:0", ready="listening on")
    try:
        yield port_of(proc.ready_line)
    finally:
        proc.stop()
        emu.stop()


@pytest.fixture
def prometheus(exporter: int, tmp_path: Path) -> Iterator[str]:
    config = tmp_path / "prometheus.yml"
    config.write_text(
        f"""\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: natprobe
    static_configs:
      - targets: ["127.0.0.1:{exporter}"]
"""
    )
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
         "--web.listen-address=127.0.0.1:0"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{listening_port(proc.pid, scaled(30))}"
        deadline = time.monotonic() + scaled(30)
        while get(base + "/-/ready")[0] != 200:  # its own readiness endpoint
            assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "prometheus.log").read_text()
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.communicate(timeout=scaled(20))
        log.close()


def query(base: str, expr: str) -> list[dict[str, Any]]:
    status, body = get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert status == 200, body
    data = json.loads(body)
    assert data["status"] == "success"
    result: list[dict[str, Any]] = data["data"]["result"]
    return result


def values(base: str, expr: str) -> dict[str, float]:
    return {r["metric"].get("probe", ""): float(r["value"][1]) for r in query(base, expr)}


def test_prometheus_scrapes_the_exporters_cached_results(prometheus: str) -> None:
    wanted = ("natprobe_check_success", "natprobe_discover_upper_seconds")
    deadline = time.monotonic() + scaled(60)
    while True:  # bounded: until every probe has reported once
        success = values(prometheus, wanted[0])
        upper = values(prometheus, wanted[1])
        if {"short", "long"} <= success.keys() and "find" in upper:
            break
        assert time.monotonic() < deadline, (success, upper)
        time.sleep(0.5)
    assert success == {"short": 1.0, "long": 0.0}
    assert 0.8 * T <= upper["find"] <= T + 0.6
    lower = values(prometheus, "natprobe_discover_lower_seconds")["find"]
    assert lower <= T <= upper["find"]
    mode = query(prometheus, "natprobe_discover_failure_mode")
    assert [(r["metric"]["probe"], r["metric"]["mode"]) for r in mode] == [("find", "silent_drop")]
    runs = values(prometheus, "natprobe_runs_total")
    assert runs["short"] >= 1 and runs["find"] == 1
    assert values(prometheus, "natprobe_run_errors_total") == {"short": 0.0, "long": 0.0, "find": 0.0}
    build = query(prometheus, "natprobe_build_info")
    assert len(build) == 1 and build[0]["metric"]["version"]
    # The scrape itself is healthy, and Prometheus keeps a series of it.
    assert values(prometheus, 'up{job="natprobe"}') == {"": 1.0}
