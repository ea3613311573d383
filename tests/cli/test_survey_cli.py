"""``natprobe survey`` as users run it: one server on several ports, both kinds."""

from __future__ import annotations

import json
import re

from tests.conftest import output_json, run_cli, start_process


def test_one_server_on_two_tcp_and_two_ws_ports_serves_a_four_path_survey() -> None:
    server = start_process(
        "server", "--tcp", "127.0.0.1:0", "--tcp", "127.0.0.1:0", "--ws", "127.0.0.1:0", "--ws", "127.0.0.1:0",
        ready="listening on",
    )  # fmt: skip
    try:
        tcp = re.findall(r"tcp 127\.0\.0\.1:(\d+)", server.ready_line)
        ws = re.findall(r"ws 127\.0\.0\.1:(\d+)", server.ready_line)
        assert len(tcp) == 2 and len(ws) == 2, server.ready_line
        targets = [f"tcp://127.0.0.1:{p}" for p in tcp] + [f"ws://127.0.0.1:{p}/" for p in ws]
        # --parallel 64: four paths of them are just over a server's default limit.
        proc = run_cli("survey", *targets, "--budget", "1s", "--parallel", "64", "--json")
        human = run_cli("survey", *targets, "--budget", "1s", "--parallel", "64", "--quiet")
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr
    survey = output_json(proc.stdout)
    assert [p["target"] for p in survey["paths"]] == targets
    assert [p["port"] for p in survey["paths"]] == [int(p) for p in tcp + ws]
    transports = [p["result"]["transport"] for p in survey["paths"]]
    assert transports == ["tcp", "tcp", "ws", "ws"]
    # One server process: every path's welcome named the same instance, so
    # their pools were sized together. Four paths of 65 connections (pool,
    # control, after-expiry) are 260, just over the default 256 per address:
    # each gives up a little, none is refused.
    pools = [p["result"]["connections"]["pool"] for p in survey["paths"]]
    assert sum(pool + 2 for pool in pools) <= 256 and min(pools) >= 60, pools
    assert human.returncode == 0 and human.stderr == ""
    rows = [line.split() for line in human.stdout.splitlines() if line.startswith(("tcp://", "ws://"))]
    assert [row[0] for row in rows] == targets
    assert all(row[1] == "IPv4" for row in rows)
    assert "Saved 4 paths to the history (natprobe history)." in human.stdout
    # Both runs saved every path as a discovery: two entries per path.
    groups = json.loads(run_cli("history", "--json").stdout)["paths"]
    assert sorted(g["path"]["target"] for g in groups if g["kind"] == "discover") == sorted(targets)
    assert all(len(g["entries"]) == 2 for g in groups)


def test_bad_survey_input_is_one_line_and_exit_2() -> None:
    for args, message in [
        (("tcp://127.0.0.1:1", "--family", "5"), "--family: '5' is not 4, 6 or both"),
        (("tcp://[::1]:1", "--family", "4"), "tcp://[::1]:1 is an IPv6 address and --family is 4"),
        (("udp://127.0.0.1:1", "--proxy", "socks5://127.0.0.1:2"), "a proxy is for tcp:// and ws(s):// targets"),
        (("tcp://127.0.0.1:1", "ftp://x"), "unsupported scheme 'ftp'"),
        (("tcp://127.0.0.1:1", "--json", "--ndjson"), "--json and --ndjson cannot be combined"),
    ]:
        proc = run_cli("survey", *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and message in proc.stderr, (args, proc.stderr)
