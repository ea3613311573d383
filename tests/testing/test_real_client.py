"""A client natprobe did not write, behind the kernel NAT of the test kit.

The websockets library's own client and server, each in its namespace of a
``kernel_nat`` whose conntrack forgets TCP flows idle T = 3 s. The server
stays silent for 6 s after the client's hello, then pushes. Without
heartbeats the flow is forgotten at 3 s and the push never arrives; with
websockets' pings every second, the NAT keeps the flow and it does.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

T = 3
SILENCE = 6

SERVER = """
import asyncio, sys
import websockets

async def pusher(ws):
    await ws.recv()
    await asyncio.sleep(float(sys.argv[2]))
    await ws.send("push")
    await ws.wait_closed()

async def main():
    async with websockets.serve(pusher, sys.argv[1], 8765, ping_interval=None):
        print("ready", flush=True)
        await asyncio.Future()

asyncio.run(main())
"""

CLIENT = """
import asyncio, sys
import websockets

async def main():
    heartbeat = float(sys.argv[2]) or None
    async with websockets.connect(sys.argv[1], ping_interval=heartbeat, ping_timeout=heartbeat, close_timeout=1) as ws:
        await ws.send("hello")
        try:
            print(await asyncio.wait_for(ws.recv(), float(sys.argv[3])))
        except TimeoutError:
            print("lost")

asyncio.run(main())
"""


@pytest.mark.requires("kernel_nat")
@pytest.mark.parametrize(("heartbeat", "outcome"), [(0, "lost"), (1, "push")], ids=["silent", "pings every 1 s"])
def test_the_websockets_client_loses_an_idle_connection_and_keeps_one_with_heartbeats(
    kernel_nat: Callable[..., Any], heartbeat: int, outcome: str
) -> None:
    nat = kernel_nat(tcp_timeout=T)
    server = nat.server([sys.executable, "-c", SERVER, nat.server_ip, str(SILENCE)], stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline() == "ready\n"
    url = f"ws://{nat.server_ip}:8765/"
    client = nat.client(
        [sys.executable, "-c", CLIENT, url, str(heartbeat), str(SILENCE + 3)], stdout=subprocess.PIPE, text=True
    )
    out, _ = client.communicate(timeout=30)
    assert out.strip() == outcome
