"""The client against servers that misbehave: every path ends cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import struct
import subprocess

import psutil
import pytest

from probe.core.planner import PlannerConfig
from probe.core.targets import Target
from probe.errors import TargetError
from probe.net.dial import Endpoint
from probe.run.check import CheckOptions, run_check
from probe.run.discover import DiscoverOptions, DiscoverRun
from tests.conftest import Proc, natprobe_cmd, port_of, run_cli, scaled, start_process

WELCOME = b'{"op":"welcome","v":1,"observed":"127.0.0.1:1","server":"x","session":"s"}\n'
MISBEHAVIOUR = {
    "garbage": b"\x00\xff\xfe garbage\n",
    "huge line": b"z" * 100_000,
    "invalid utf-8": b"\xff\xfe\xfd\n",
    "not an object": b"[1,2,3]\n",
    "silent": b"",
    "closes": b"",
    "resets": b"",
    "half a line": b'{"op":"wel',
    "busy": b'{"op":"error","code":"busy","message":"too many sessions"}\n',
    "unauthorized": b'{"op":"error","code":"unauthorized","message":"no"}\n',
    "http": b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
    "wrong op": b'{"op":"push","id":"x","idle_s":1}\n',
    "escape sequences": b'{"op":"error","code":"\\u001b[2J","message":"\\u001b]0;pwned\\u0007"}\n',
    "garbage after welcome": WELCOME + b"\x00\x01\x02\n",
}


async def _misbehave(mode: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        await reader.readuntil(b"\n")
        if mode == "closes":
            writer.close()
            return
        if mode == "resets":
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        writer.write(MISBEHAVIOUR[mode])
        await writer.drain()
        await reader.read()  # hold the connection until the client leaves
    writer.transport.abort()


async def _against(mode: str) -> list[BaseException | object]:
    server = await asyncio.start_server(lambda r, w: _misbehave(mode, r, w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    target = Target("tcp", "127.0.0.1", port)
    try:
        async with asyncio.timeout(scaled(15)):
            return await asyncio.gather(
                run_check(CheckOptions(Endpoint(target, timeout_s=1.0), idle_s=0.2)),
                DiscoverRun(DiscoverOptions(Endpoint(target, timeout_s=1.0), PlannerConfig())).run(),
                return_exceptions=True,
            )
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()


def test_every_misbehaviour_is_a_clean_target_error_with_nothing_left_behind() -> None:
    process = psutil.Process()

    async def body() -> dict[str, list[BaseException | object]]:
        fds_before = process.num_fds()
        results = dict(zip(MISBEHAVIOUR, await asyncio.gather(*map(_against, MISBEHAVIOUR)), strict=True))
        # An aborted transport closes its socket in a callback on the next
        # loop iteration: let the queued callbacks run (no time passes).
        for _ in range(3):
            await asyncio.sleep(0)
        # Every socket and task the probes made is gone.
        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert process.num_fds() <= fds_before
        return results

    results = asyncio.run(body())
    for mode, outcomes in results.items():
        for outcome in outcomes:
            assert isinstance(outcome, TargetError), (mode, outcome)
            assert "\n" not in outcome.message and "\x1b" not in outcome.message, (mode, outcome.message)
    assert "said busy" in results["busy"][0].message  # type: ignore[union-attr]


def test_busy_server_is_exit_3_for_discover() -> None:
    server = start_process("server", "--tcp", "127.0.0.1:0", "--max-per-ip", "1", ready="listening on")
    try:
        proc = run_cli("discover", f"tcp://127.0.0.1:{port_of(server.ready_line)}", "--json")
    finally:
        server.stop()
    assert proc.returncode == 3
    # The control connection took the only place: welcome says none is left.
    assert "allows only 0 more connection(s) from this address" in proc.stderr and proc.stderr.count("\n") == 1


def test_token_from_the_environment() -> None:
    proc = start_process("server", "--tcp", "127.0.0.1:0", ready="listening on", env={"NATPROBE_TOKEN": "s3cret"})
    try:
        target = f"tcp://127.0.0.1:{port_of(proc.ready_line)}"
        wrong = run_cli("check", target, "--idle", "0.1", "--token", "nope")
        right = run_cli("check", target, "--idle", "0.1", env={"NATPROBE_TOKEN": "s3cret"})
    finally:
        proc.stop()
    assert wrong.returncode == 3 and "said unauthorized" in wrong.stderr
    assert right.returncode == 0, right.stderr


def _ndjson_until_first_test(server: Proc) -> tuple[subprocess.Popen[str], list[dict[str, object]]]:
    """Start discover --ndjson and read its events up to the first test result."""
    port = port_of(server.ready_line)
    proc = subprocess.Popen(
        natprobe_cmd("discover", f"tcp://127.0.0.1:{port}", "--ndjson"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # bounded: the first test comes about 2 s in
        seen.append(json.loads(line))
        if seen[-1]["event"] == "test":
            break
    return proc, seen


def test_sigterm_prints_the_partial_json_and_exits_130(server_proc: Proc) -> None:
    proc, _ = _ndjson_until_first_test(server_proc)
    proc.send_signal(signal.SIGTERM)
    rest, err = proc.communicate(timeout=scaled(20))
    assert proc.returncode == 130, err
    final = json.loads(rest.strip().splitlines()[-1])
    assert final["event"] == "result" and final["interrupted"] is True
    assert final["probes"] and final["lower_s"] is not None


def test_a_killed_ndjson_run_leaves_what_it_learned(server_proc: Proc) -> None:
    proc, seen = _ndjson_until_first_test(server_proc)
    proc.kill()
    rest, _ = proc.communicate(timeout=scaled(10))
    events = seen + [json.loads(line) for line in rest.splitlines() if line]
    assert all("event" in e for e in events)
    tests = [e for e in events if e["event"] == "test"]
    assert tests and tests[0]["outcome"] == "survived" and tests[0]["idle_s"] > 1.0


@pytest.mark.parametrize("order", [("--json", "--ndjson"), ("--ndjson", "--json")])
def test_json_and_ndjson_do_not_combine_in_either_order(order: tuple[str, str]) -> None:
    proc = run_cli("discover", "tcp://127.0.0.1:1", *order)
    assert proc.returncode == 2
    assert proc.stderr == "natprobe: --json and --ndjson cannot be combined\n"
