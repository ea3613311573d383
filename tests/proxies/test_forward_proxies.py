"""Through the proxies corporate clients use: Debian's squid (HTTP CONNECT) and microsocks (SOCKS5).

squid closes CONNECT tunnels that carried nothing for its read_timeout (3 s
here). Its clock counts whole seconds, so a tunnel is closed between about
T - 1 and T after squid last read from it, which is a little before
natprobe's idle begins (squid reads the server's welcome before the client
does; more so on a loaded machine). Measured here: 2.05-2.5 s for 3 s,
6.1-6.2 s for 7 s, and once, under CI's load, 1.9 s for 3 s. discover through
it brackets that, with the path through the proxy named in the result. Through
microsocks, which keeps tunnels open, discover measures what lies behind
it: the test kit's expiring NAT, forgetting flows idle 2 s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from probe.testing import ExpiringNat
from tests.conftest import Proc, output_json, port_of, run_cli, start_process
from tests.proxies.tools import canned_proxy, microsocks, squid

pytestmark = pytest.mark.requires("squid", "microsocks")

SQUID_TIMEOUT = 3


@pytest.fixture
def server() -> Iterator[Proc]:
    proc = start_process("server", "--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0", ready="listening on")
    yield proc
    proc.stop()


def ports(server: Proc) -> tuple[int, int]:
    tcp = port_of(server.ready_line)
    ws = int(server.ready_line.rsplit(":", 1)[1].split()[0].rstrip(","))
    return tcp, ws


def discover(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = run_cli("discover", *args, "--json", "--no-save", env=env)
    assert proc.returncode == 0, proc.stderr
    return output_json(proc.stdout)


@pytest.mark.parametrize("how", ["url", "env"])
def test_discover_through_squid_brackets_squids_own_timeout(server: Proc, tmp_path: Path, how: str) -> None:
    tcp, _ = ports(server)
    with squid(tmp_path, SQUID_TIMEOUT) as port:
        proxy = f"http://127.0.0.1:{port}"
        if how == "url":
            result = discover(f"tcp://127.0.0.1:{tcp}", "--proxy", proxy)
        else:
            env = {"HTTPS_PROXY": proxy, "NO_PROXY": "", "no_proxy": "", "https_proxy": "", "ALL_PROXY": ""}
            result = discover(f"tcp://127.0.0.1:{tcp}", "--proxy", "env", env=env)
    assert result["proxy"] == proxy
    # squid closes the tunnel itself, within its whole-second timeout.
    assert result["failure_mode"] == "closed"
    assert SQUID_TIMEOUT - 1.5 <= result["lower_s"] <= result["upper_s"] <= SQUID_TIMEOUT + 0.2


def test_the_summary_says_the_path_measured_is_the_one_through_the_proxy(server: Proc, tmp_path: Path) -> None:
    tcp, _ = ports(server)
    with squid(tmp_path, SQUID_TIMEOUT) as port:
        proc = run_cli("discover", f"tcp://127.0.0.1:{tcp}", "--proxy", f"http://127.0.0.1:{port}", "--no-save")
    assert proc.returncode == 0, proc.stderr
    assert f"Through the proxy http://127.0.0.1:{port}: what was measured is the path through it" in proc.stdout


def test_discover_through_socks5_measures_the_path_behind_the_proxy(
    server: Proc, expiring_nat: Callable[..., ExpiringNat]
) -> None:
    tcp, _ = ports(server)
    nat = expiring_nat(upstream=("127.0.0.1", tcp), idle_timeout=2.0)
    with microsocks() as port:
        result = discover(f"tcp://127.0.0.1:{nat.port}", "--proxy", f"socks5://127.0.0.1:{port}")
    assert result["proxy"] == f"socks5://127.0.0.1:{port}"
    assert result["lower_s"] <= 2.0 <= result["upper_s"] and result["failure_mode"] == "silent_drop"


def test_a_survey_through_socks5_measures_each_path_behind_the_proxy(
    server: Proc, expiring_nat: Callable[..., ExpiringNat]
) -> None:
    tcp, ws = ports(server)
    nat = expiring_nat(upstream=("127.0.0.1", tcp), idle_timeout=2.0)
    with microsocks() as port:
        proxy = f"socks5h://127.0.0.1:{port}"
        proc = run_cli(
            "survey", f"tcp://127.0.0.1:{nat.port}", f"ws://localhost:{ws}/", "--proxy", proxy, "--budget", "6s",
            "--json",
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    survey = output_json(proc.stdout)
    behind_nat, direct = survey["paths"]
    # The proxy resolves names and picks the family: the survey says so.
    assert behind_nat["family"] is None and direct["family"] is None
    assert behind_nat["result"]["proxy"] == direct["result"]["proxy"] == proxy
    assert behind_nat["result"]["lower_s"] <= 2.0 <= behind_nat["result"]["upper_s"]
    assert direct["result"]["upper_s"] is None and direct["result"]["transport"] == "ws"


def test_check_and_hold_over_websocket_through_socks5h(server: Proc) -> None:
    _, ws = ports(server)
    with microsocks() as port:
        proxy = f"socks5h://127.0.0.1:{port}"
        check = run_cli("check", f"ws://127.0.0.1:{ws}/", "--idle", "0.5s", "--proxy", proxy, "--json", "--no-save")
        hold = run_cli("hold", f"ws://127.0.0.1:{ws}/", "--duration", "0.5s", "--proxy", proxy, "--json")
    assert check.returncode == 0, check.stderr
    assert output_json(check.stdout)["proxy"] == proxy and output_json(check.stdout)["passed"] is True
    assert hold.returncode == 0, hold.stderr
    assert output_json(hold.stdout)["proxy"] == proxy


def one_line(proc: Any) -> str:
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    return str(proc.stderr)


def test_a_proxy_that_refuses_wants_a_password_or_speaks_garbage_is_exit_3_naming_it(server: Proc) -> None:
    tcp, ws = ports(server)
    refused = run_cli("check", f"tcp://127.0.0.1:{tcp}", "--idle", "0.2s", "--proxy", "http://127.0.0.1:1")
    assert refused.returncode == 3 and "the proxy http://127.0.0.1:1 refused the connection" in one_line(refused)
    wants = b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n"
    with canned_proxy(wants) as port:
        for target in (f"tcp://127.0.0.1:{tcp}", f"ws://127.0.0.1:{ws}/"):
            auth = run_cli("check", target, "--idle", "0.2s", "--proxy", f"http://u:secret@127.0.0.1:{port}")
            line = one_line(auth)
            assert auth.returncode == 3 and f"the proxy http://u@127.0.0.1:{port}" in line, line
            assert "secret" not in line and "407" in line
    with canned_proxy(b"garbage\r\n\r\n") as port:
        for target in (f"tcp://127.0.0.1:{tcp}", f"ws://127.0.0.1:{ws}/"):
            bad = run_cli("check", target, "--idle", "0.2s", "--proxy", f"http://127.0.0.1:{port}")
            assert bad.returncode == 3 and f"the proxy http://127.0.0.1:{port}" in one_line(bad)
    with microsocks("u", "p") as port:
        socks = run_cli("check", f"tcp://127.0.0.1:{tcp}", "--idle", "0.2s", "--proxy", f"socks5://127.0.0.1:{port}")
    assert socks.returncode == 3 and f"the proxy socks5://127.0.0.1:{port}" in one_line(socks)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("check", "tcp://127.0.0.1:1", "--idle", "1s", "--proxy", "ftp://h:1"), "unsupported proxy scheme 'ftp'"),
        (("check", "tcp://127.0.0.1:1", "--idle", "1s", "--proxy", "http://[::1"), "invalid proxy 'http://[::1'"),
        (("check", "tcp://127.0.0.1:1", "--idle", "1s", "--proxy", "h:1"), "invalid proxy 'h:1'"),
        (("discover", "udp://127.0.0.1:1", "--proxy", "http://h:1"), "a proxy is for tcp:// and ws(s):// targets"),
        (("locate", "tcp://127.0.0.1:1", "--proxy", "http://h:1"), "locate cannot work through a proxy"),
    ],
)
def test_a_malformed_or_impossible_proxy_is_a_usage_error(args: tuple[str, ...], message: str) -> None:
    proc = run_cli(*args)
    assert proc.returncode == 2 and message in one_line(proc)


def test_the_exporter_runs_a_probe_through_its_proxy(server: Proc) -> None:
    import asyncio

    from probe.core.check import CheckResult
    from probe.core.exporter_config import JobSpec
    from probe.run.exporter import run_job

    tcp, _ = ports(server)
    with microsocks() as port:
        proxy = f"socks5://127.0.0.1:{port}"
        spec = JobSpec("p", f"tcp://127.0.0.1:{tcp}", "check", 60.0, {"idle": 0.2}, proxy=proxy, timeout_s=10.0)
        result = asyncio.run(run_job(spec))
    assert isinstance(result, CheckResult) and result.passed is True and result.proxy == proxy
