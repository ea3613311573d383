"""Load on one server process: 15,000 concurrent idle sessions on loopback.

    python benchmarks/server_load.py [--sessions 15000] [--json]

For natprobe's server and, in the same run, a baseline (a plain asyncio-streams
server with one task per connection, speaking the same protocol), it reports:

* RSS per idle session: server RSS with all sessions greeted and idle, minus
  its RSS before, divided by the number of sessions;
* accept rate: sessions greeted per second while the client opens them;
* push lateness: every session asks for a push 3 to 7 s later (spread
  evenly; requests go out 50 every 10 ms), and the client measures how late
  each push arrives against the time it was due (p50, p99, max). The figure
  includes loopback delivery and the client's own scheduling.

The load client runs in its own process and spreads its connections over
several 127.0.0.x source addresses (one address has ~28k ephemeral ports, and
per-address limits are per source IP). Each process may hold 20,000 open
files here, so 15,000 sessions fit on each side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from probe.core.heartbeat import percentile

SOURCES = [f"127.0.0.{n}" for n in range(2, 12)]


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- servers (each in its own process) ---------------------------------------


def run_natprobe_server(port_queue: Any, sessions: int) -> None:
    from probe.net.server import ProbeServer, ServerConfig
    from probe.run.serve import keep_gc_cheap

    _raise_nofile()

    async def main() -> None:
        # As `natprobe server` runs it, GC policy included.
        server = ProbeServer(ServerConfig(max_sessions=sessions + 100, max_per_ip=sessions))
        _, port = await server.listen_tcp("127.0.0.1", 0)
        port_queue.put(port)
        await keep_gc_cheap()

    asyncio.run(main())


def run_baseline_server(port_queue: Any, sessions: int) -> None:
    """The baseline: asyncio streams, one task per connection."""
    _raise_nofile()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            hello = json.loads(line)
            if hello.get("op") != "hello":
                return
            host, port = writer.get_extra_info("peername")[:2]
            writer.write(json.dumps({"op": "welcome", "v": 1, "observed": f"{host}:{port}"}).encode() + b"\n")
            while True:
                line = await reader.readline()
                if not line:
                    return
                msg = json.loads(line)
                if msg.get("op") == "push_after":
                    await asyncio.sleep(float(msg["idle_s"]))
                    writer.write(json.dumps({"op": "push", "id": msg["id"], "idle_s": msg["idle_s"]}).encode() + b"\n")
        except (OSError, ValueError):
            return
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
        port_queue.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


# --- the load client ------------------------------------------------------------


class _Client(asyncio.Protocol):
    __slots__ = ("buf", "done", "due", "greeted", "idle", "late", "transport")

    def __init__(self, idle: float, greeted: asyncio.Future[float], done: asyncio.Future[float]) -> None:
        self.buf = b""
        self.idle = idle
        self.greeted = greeted
        self.done = done
        self.due = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b'{"op":"hello","v":1}\n')

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\n" in self.buf:
            _line, self.buf = self.buf.split(b"\n", 1)
            now = time.monotonic()
            if not self.greeted.done():
                self.greeted.set_result(now)
            elif not self.done.done():
                self.done.set_result(now - self.due)

    def arm(self) -> None:
        assert self.transport is not None
        self.due = time.monotonic() + self.idle
        self.transport.write(b'{"op":"push_after","id":"x","idle_s":%.3f}\n' % self.idle)

    def connection_lost(self, exc: Exception | None) -> None:
        for fut in (self.greeted, self.done):
            if not fut.done():
                fut.set_exception(ConnectionError("lost"))


def run_client(port: int, sessions: int, result_queue: Any, phase: Any) -> None:
    _raise_nofile()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        clients: list[_Client] = []
        greeted: list[asyncio.Future[float]] = []
        done: list[asyncio.Future[float]] = []
        started = time.monotonic()
        batch = 500
        for first in range(0, sessions, batch):
            opening = []
            for n in range(first, min(first + batch, sessions)):
                g, d = loop.create_future(), loop.create_future()
                idle = 3.0 + 4.0 * n / sessions
                client = _Client(idle, g, d)
                clients.append(client)
                greeted.append(g)
                done.append(d)
                source = SOURCES[n % len(SOURCES)]
                opening.append(loop.create_connection(lambda c=client: c, "127.0.0.1", port, local_addr=(source, 0)))
            await asyncio.gather(*opening)
        await asyncio.gather(*greeted)
        accept_s = time.monotonic() - started
        result_queue.put({"accept_s": accept_s})
        phase.wait()  # the parent measures the server's RSS now
        # Arm gradually (50 sessions every 10 ms): a burst of 10,000 requests
        # would measure the queue in front of the server, not its timers.
        for first in range(0, len(clients), 50):
            for client in clients[first : first + 50]:
                client.arm()
            await asyncio.sleep(0.01)
        late = await asyncio.gather(*done, return_exceptions=True)
        values = sorted(x for x in late if isinstance(x, float))
        result_queue.put({"late": values, "lost": sum(1 for x in late if not isinstance(x, float))})
        for client in clients:
            if client.transport is not None:
                client.transport.close()

    asyncio.run(main())


def measure(name: str, target: Any, sessions: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ports: Any = ctx.Queue()
    server = ctx.Process(target=target, args=(ports, sessions), daemon=True)
    server.start()
    port = ports.get(timeout=30)
    proc = psutil.Process(server.pid)
    rss_before = proc.memory_info().rss
    results: Any = ctx.Queue()
    phase = ctx.Event()
    client = ctx.Process(target=run_client, args=(port, sessions, results, phase), daemon=True)
    client.start()
    try:
        accept = results.get(timeout=120)
        rss_loaded = proc.memory_info().rss
        phase.set()
        pushes = results.get(timeout=120)
    finally:
        client.join(timeout=30)
        for p in (client, server):
            if p.is_alive():
                p.kill()
                p.join()
    late = pushes["late"]
    return {
        "server": name,
        "sessions": sessions,
        "rss_per_session_kib": round((rss_loaded - rss_before) / sessions / 1024, 2),
        "accept_s": round(accept["accept_s"], 2),
        "accept_per_s": round(sessions / accept["accept_s"]),
        "late_p50_ms": round(statistics.median(late) * 1000, 1) if late else None,
        "late_p99_ms": round(percentile(late, 0.99) * 1000, 1) if late else None,
        "late_max_ms": round(late[-1] * 1000, 1) if late else None,
        "lost": pushes["lost"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=15_000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", choices=["natprobe", "baseline"])
    args = parser.parse_args()
    rows = []
    for name, target in (("natprobe", run_natprobe_server), ("baseline", run_baseline_server)):
        if args.only and args.only != name:
            continue
        rows.append(measure(name, target, args.sessions))
    if args.json:
        print(json.dumps({"rows": rows, "cpu_count": os.cpu_count()}, indent=2))
        return
    print(f"{'server':10} {'sessions':>8} {'RSS/session':>12} {'accept s':>9} {'accept/s':>9} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'lost':>5}")  # fmt: skip
    for r in rows:
        print(
            f"{r['server']:10} {r['sessions']:8d} {r['rss_per_session_kib']:9.2f} KiB {r['accept_s']:9.2f} "
            f"{r['accept_per_s']:9d} {r['late_p50_ms']:7.1f} {r['late_p99_ms']:7.1f} {r['late_max_ms']:7.1f} "
            f"{r['lost']:5d}"
        )


if __name__ == "__main__":
    main()
