"""WebSocket through a real nginx reverse proxy with a short proxy_read_timeout.

nginx closes a proxied WebSocket when the upstream sends nothing for
proxy_read_timeout (here 2 s, scaled): discover must bracket it with failure
mode "closed"; heartbeats the server answers keep the session open; without
them the session ends "closed" at about that age. wss uses a private CA.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from probe.net.server import ProbeServer
from probe.net.ws_server import listen_ws
from tests.conftest import Proc, output_json, port_of, run_cli, scaled, start_process
from tests.proxies.tools import Certs, listener, make_certs, nginx, ws_proxy_block

pytestmark = [
    pytest.mark.lab,
    pytest.mark.requires("nginx"),
]

READ_TIMEOUT = scaled(2.0)


@pytest.fixture
def ws_server() -> Iterator[Proc]:
    proc = start_process("server", "--ws", "127.0.0.1:0", ready="listening on")
    yield proc
    proc.stop()


@pytest.fixture
def proxied(ws_server: Proc, tmp_path: Path) -> Iterator[int]:
    with listener() as listen:
        block = ws_proxy_block(listen.port, port_of(ws_server.ready_line), READ_TIMEOUT)
        with nginx(block, tmp_path, listen):
            yield listen.port


def test_discover_brackets_proxy_read_timeout_as_closed(proxied: int) -> None:
    proc = run_cli("discover", f"ws://127.0.0.1:{proxied}/probe", "--json")
    assert proc.returncode == 0, proc.stderr
    result = output_json(proc.stdout)
    assert result["transport"] == "ws"
    assert result["failure_mode"] == "closed"
    # nginx arms its timer from a clock cached at the start of an event-loop
    # iteration, so it can fire a few ms before 2 s of measured silence.
    slack = 0.05
    assert result["lower_s"] <= READ_TIMEOUT + slack and result["upper_s"] >= READ_TIMEOUT - slack
    assert result["upper_s"] - result["lower_s"] <= 0.5 + 1e-3
    # A WebSocket reverse proxy terminates TCP: keepalive probes end at nginx,
    # while data (pings too) either way keeps the tunnel (METHOD.md 12).
    designs = result["designs"]
    assert designs["tcp_keepalive"]["kept"] is False, designs["tcp_keepalive"]
    for name in ("client_data", "server_data", "ws_ping", "heartbeat"):
        assert designs[name]["kept"] is True, (name, designs[name])
    assert result["middlebox"]["kind"] == "tcp_terminating"
    rec = result["recommendations"]
    assert rec["linux_sysctl"] is None and rec["design"] == "client_data"
    assert result["connections"]["designs"] == 6


def test_hold_with_shorter_heartbeats_survives(proxied: int) -> None:
    # Pings are answered by the upstream server with pongs: upstream data.
    proc = run_cli(
        "hold", f"ws://127.0.0.1:{proxied}/", "--heartbeat", str(READ_TIMEOUT / 4), "--duration",
        str(READ_TIMEOUT * 2), "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = output_json(proc.stdout)
    assert result["ended"] == "duration" and result["heartbeat"]["missed"] == 0
    assert result["heartbeat"]["answered"] >= 6


def test_hold_with_heartbeats_outlives_the_servers_hello_deadline(proxied: int) -> None:
    # The natprobe server closes a connection that says no hello within 10 s,
    # unless it stays silent (pings are not messages): a hold's session is
    # kept, so it lives as long as the path lets it, here past 10 s.
    proc = run_cli(
        "hold", f"ws://127.0.0.1:{proxied}/", "--heartbeat", str(READ_TIMEOUT / 4), "--duration", "11s", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout
    result = output_json(proc.stdout)
    assert result["ended"] == "duration" and result["alive_s"] == 11.0 and result["heartbeat"]["missed"] == 0


def test_hold_without_heartbeats_is_closed_at_the_timeout(proxied: int) -> None:
    proc = run_cli("hold", f"ws://127.0.0.1:{proxied}/", "--duration", str(READ_TIMEOUT * 3), "--json")
    assert proc.returncode == 1, proc.stderr
    result = output_json(proc.stdout)
    assert result["ended"] == "closed"
    assert result["alive_s"] == pytest.approx(READ_TIMEOUT, abs=scaled(0.5))
    assert result["close_code"] is not None


@pytest.mark.requires("openssl")
def test_wss_through_nginx_with_a_private_ca(ws_server: Proc, tmp_path: Path) -> None:
    certs: Certs = make_certs(tmp_path)
    with listener() as listen:
        block = ws_proxy_block(listen.port, port_of(ws_server.ready_line), 30, tls=certs)
        with nginx(block, tmp_path, listen):
            target = f"wss://localhost:{listen.port}/"
            good = run_cli("check", target, "--idle", "300ms", "--cacert", str(certs.ca), "--json")
            assert good.returncode == 0, good.stderr
            assert output_json(good.stdout)["passed"] is True
            bad = run_cli("check", target, "--idle", "300ms", "--json")
    assert bad.returncode == 3
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "certificate verification failed" in lines[0]
    assert bad.stdout == ""


def test_in_process_ws_server_answers_beats() -> None:
    async def body() -> None:
        server = ProbeServer()
        host, port = await listen_ws(server, "127.0.0.1", 0)
        from websockets.asyncio.client import connect

        async with connect(f"ws://{host}:{port}/any/path", ping_interval=None, proxy=None) as ws:
            await ws.send('{"op":"hello","v":1}')
            assert json.loads(await ws.recv())["op"] == "welcome"
            await ws.send('{"op":"beat","id":"7"}')
            assert json.loads(await ws.recv()) == {"op": "beat_ack", "id": "7"}
            await ws.send('{"op":"nope"}')
            assert json.loads(await ws.recv())["code"] == "unknown_op"
            await asyncio.wait_for(ws.wait_closed(), 5)
            assert ws.close_code == 1008
        await server.shutdown()

    asyncio.run(body())
