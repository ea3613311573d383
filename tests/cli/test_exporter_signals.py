"""The exporter stops cleanly on SIGTERM after its discoveries and surveys ran.

A discovery handles Ctrl-C itself when run by ``discover``; run by the
exporter it must not: installing its handler and removing it afterwards
would leave the exporter's SIGTERM to the default action, and the process
would die (exit -15) instead of stopping (exit 0).
"""

from __future__ import annotations

import re
import signal
import time
import urllib.request
from pathlib import Path

from tests.conftest import port_of, scaled, start_process


def _runs(metrics_url: str) -> dict[str, float]:
    with urllib.request.urlopen(metrics_url, timeout=scaled(5)) as reply:
        text = reply.read().decode()
    return {m[0]: float(m[1]) for m in re.findall(r'^natprobe_runs_total\{probe="([^"]+)"\} (\S+)$', text, re.M)}


def test_sigterm_stops_the_exporter_after_a_discover_and_a_survey_ran(tmp_path: Path) -> None:
    server = start_process("server", "--tcp", "127.0.0.1:0", ready="listening on")
    try:
        target = f"tcp://127.0.0.1:{port_of(server.ready_line)}"
        config = tmp_path / "exporter.yml"
        config.write_text(
            "start_spread: 0.1s\nprobes:\n"
            f"  - {{name: d, target: '{target}', every: 1h, discover: {{budget: 1s}}}}\n"
            f"  - {{name: s, targets: ['{target}'], every: 1h, survey: {{budget: 1s}}}}\n"
        )
        exporter = start_process("exporter", "--config", str(config), "--listen", "127.0.0.1:0", ready="listening")
        try:
            url = f"http://127.0.0.1:{port_of(exporter.ready_line)}/metrics"
            deadline = time.monotonic() + scaled(30)
            # Bounded: until both probes have finished a run, which the
            # exporter itself reports in its metrics.
            while _runs(url) != {"d": 1.0, "s": 1.0}:
                assert time.monotonic() < deadline, _runs(url)
                assert exporter.proc.poll() is None
                time.sleep(0.1)
        finally:
            code = exporter.stop(signal.SIGTERM)
        assert code == 0
    finally:
        server.stop()
