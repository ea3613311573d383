"""TCP through a real HAProxy in TCP mode with short client and server timeouts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Proc, output_json, port_of, run_cli, scaled
from tests.proxies.tools import haproxy_tcp, listener

pytestmark = [pytest.mark.lab, pytest.mark.requires("haproxy")]

TIMEOUT = scaled(2.0)


def test_discover_brackets_haproxy_timeouts_as_closed(server_proc: Proc, tmp_path: Path) -> None:
    with listener() as listen, haproxy_tcp(listen, port_of(server_proc.ready_line), TIMEOUT, tmp_path):
        proc = run_cli("discover", f"tcp://127.0.0.1:{listen.port}", "--json")
    assert proc.returncode == 0, proc.stderr
    result = output_json(proc.stdout)
    assert result["failure_mode"] == "closed"
    # HAProxy's timers tick on its own event loop; allow its few ms of slack.
    slack = 0.05
    assert result["lower_s"] <= TIMEOUT + slack and result["upper_s"] >= TIMEOUT - slack
    assert result["upper_s"] - result["lower_s"] <= 0.5 + 1e-3
    # HAProxy terminates TCP and counts data either way (METHOD.md 12):
    # its design connections prove kernel keepalive does not keep it.
    designs = result["designs"]
    assert designs["tcp_keepalive"]["kept"] is False, designs["tcp_keepalive"]
    assert designs["client_data"]["kept"] is True and designs["server_data"]["kept"] is True, designs
    assert result["middlebox"]["kind"] == "tcp_terminating"
    assert result["recommendations"]["linux_sysctl"] is None
    assert result["plan"]["keepalive"]["kept"] is False
