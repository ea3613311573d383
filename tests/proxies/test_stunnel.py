"""TCP through a real stunnel pair (Debian's stunnel4) that closes idle tunnels.

stunnel terminates TCP at both ends of its TLS tunnel: the client's kernel
keepalive probes are answered by the first stunnel and never reach the one
whose TIMEOUTidle forgets the tunnel. Discover must bracket the timeout,
prove with its design connections that kernel keepalive does not keep the
path while data does, and so leave the sysctls out of its advice.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Proc, output_json, port_of, run_cli, scaled
from tests.proxies.tools import stunnel_pair

pytestmark = [pytest.mark.lab, pytest.mark.requires("stunnel4", "openssl")]

#: TIMEOUTidle takes whole seconds.
IDLE_S = max(3, round(scaled(3.0)))


def test_designs_prove_keepalive_does_not_keep_a_tls_tunnel(server_proc: Proc, tmp_path: Path) -> None:
    with stunnel_pair(port_of(server_proc.ready_line), IDLE_S, tmp_path) as port:
        proc = run_cli("discover", f"tcp://127.0.0.1:{port}", "--json")
        # The same path, checked by hand as a user would: keepalive every
        # second from the client does not keep it past the timeout.
        check = run_cli(
            "check", f"tcp://127.0.0.1:{port}", "--idle", f"{IDLE_S + 2}s", "--keepalive-idle", "1",
            "--keepalive-interval", "1", "--keepalive-count", "3", "--json",
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = output_json(proc.stdout)
    # stunnel's idle timer runs on whole seconds of its own clock.
    assert result["lower_s"] <= IDLE_S + 1.0 and result["upper_s"] >= IDLE_S - 0.5
    designs = result["designs"]
    assert designs["tcp_keepalive"]["kept"] is False, designs["tcp_keepalive"]
    assert designs["client_data"]["kept"] is True, designs["client_data"]
    assert designs["server_data"]["kept"] is True, designs["server_data"]
    assert designs["heartbeat"]["kept"] is True
    assert result["middlebox"]["kind"] == "tcp_terminating"
    rec = result["recommendations"]
    assert rec["linux_sysctl"] is None and rec["socket_options"] is None
    assert rec["design"] == "client_data"
    assert result["total_s"] <= result["wall_s"] + 3.0
    assert check.returncode == 1, check.stdout + check.stderr
    assert output_json(check.stdout)["outcome"] == "failed"
