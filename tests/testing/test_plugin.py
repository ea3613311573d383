"""natprobe's pytest plugin, tested with pytester on generated test files.

Files run in process (``runpytest_inprocess``) where the test must look at
what the plugin left behind in this process: threads, sockets, children,
namespaces. Elsewhere they run in a fresh pytest process, as a user's would.
"""

from __future__ import annotations

import os
import subprocess
import threading

import psutil
import pytest

UPSTREAM_FIXTURE = """
import socket
import threading

import pytest


@pytest.fixture
def echo():
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)  # a closed listener does not wake accept(): look again soon
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(10)
            with conn:
                while data := conn.recv(100):
                    conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()
    stop.set()
    listener.close()
    thread.join(10)
"""

EVERY_FIXTURE = """
import socket
import subprocess
import sys


def test_expiring_nat(echo, expiring_nat):
    nat = expiring_nat(upstream=echo, idle_timeout=0.3)
    with socket.create_connection(nat.address, timeout=5) as sock:
        sock.sendall(b"x")
        assert sock.recv(10) == b"x"
        nat.wait_for("expired")


def test_expiring_udp_nat(expiring_udp_nat):
    upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    upstream.bind(("127.0.0.1", 0))
    upstream.settimeout(5)
    with upstream, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        nat = expiring_udp_nat(upstream=upstream.getsockname(), idle_timeout=0.3)
        client.sendto(b"x", nat.address)
        assert upstream.recvfrom(10)[0] == b"x"
        nat.wait_for("expired")


def test_kernel_nat(kernel_nat):
    nat = kernel_nat(tcp_timeout=2)
    server = nat.server([sys.executable, "-c", "import socket,sys; s=socket.create_server((sys.argv[1], 9000)); "
                         "print('up', flush=True); c,_=s.accept(); c.sendall(c.recv(9))", nat.server_ip],
                        stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline() == "up\\n"
    client = nat.client([sys.executable, "-c", "import socket,sys; c=socket.create_connection((sys.argv[1], 9000)); "
                         "c.sendall(b'hi'); print(c.recv(9).decode())", nat.server_ip],
                        stdout=subprocess.PIPE, text=True)
    assert client.communicate(timeout=10)[0] == "hi\\n"
    flows = [f for f in nat.conntrack() if f.protocol == "tcp" and f.original[3] == 9000]
    assert flows and flows[0].public[0] == nat.public_ip
    server.wait(10)
"""

NO_HEARTBEAT = """
import socket


def test_my_client_survives_an_idle_minute(echo, expiring_nat):
    nat = expiring_nat(upstream=echo, idle_timeout=0.3)
    with socket.create_connection(nat.address, timeout=5) as sock:
        sock.sendall(b"hello")
        assert sock.recv(10) == b"hello"
        nat.wait_for("expired")  # the client sends no heartbeat while it waits
        sock.sendall(b"still there?")
        sock.settimeout(1)
        assert sock.recv(20) == b"still there?"
"""

MARKED = """
import socket

import pytest


@pytest.mark.natprobe(upstream="echo", idle_timeout=0.3, mode="close")
def test_marker_gives_a_ready_nat(expiring_nat):
    assert expiring_nat.mode == "close" and expiring_nat.idle_timeout == 0.3
    with socket.create_connection(expiring_nat.address, timeout=5) as sock:
        sock.sendall(b"x")
        assert sock.recv(10) == b"x"
        expiring_nat.wait_for("closed")
        assert sock.recv(10) == b""


@pytest.mark.natprobe(upstream="echo", idle_timeout=0.3)
def test_marker_without_the_fixture(echo):
    pass


@pytest.mark.natprobe(idle_timeout=1)
def test_marker_without_upstream(expiring_nat):
    pass
"""


def natprobe_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("natprobe-")]


def lab_namespaces() -> list[str]:
    # Labs built by this process are named np<pid>...; other workers' are theirs.
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(f"np{os.getpid()}")]


@pytest.mark.requires("kernel_nat")
def test_a_file_using_every_fixture_passes_and_teardown_leaves_nothing_behind(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(UPSTREAM_FIXTURE)
    pytester.makepyfile(test_every=EVERY_FIXTURE)
    me = psutil.Process()
    sockets, children = len(me.net_connections("all")), me.children(recursive=True)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert natprobe_threads() == []
    assert len(me.net_connections("all")) == sockets
    assert me.children(recursive=True) == children
    assert lab_namespaces() == []


def test_a_client_without_a_heartbeat_fails_as_it_should(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(UPSTREAM_FIXTURE)
    pytester.makepyfile(test_client=NO_HEARTBEAT)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*TimeoutError*"])


def test_the_marker_sets_up_a_ready_nat_and_says_what_is_missing(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(UPSTREAM_FIXTURE)
    pytester.makepyfile(test_marked=MARKED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", timeout=60)
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_marker_without_the_fixture*",
            "@pytest.mark.natprobe needs the test to take the expiring_nat fixture",
            "*ERROR at setup of test_marker_without_upstream*",
            "@pytest.mark.natprobe needs upstream=(host, port) or upstream='fixture_name'",
        ]
    )


BAD_INPUT = """
import socket

import pytest


def test_zero_timeout(echo, expiring_nat):
    expiring_nat(upstream=echo, idle_timeout=0)


def test_negative_timeout(expiring_udp_nat):
    expiring_udp_nat(upstream=("127.0.0.1", 9), idle_timeout=-1)


def test_unknown_mode(echo, expiring_nat):
    expiring_nat(upstream=echo, mode="vanish")


def test_refusing_upstream(expiring_nat):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound, never listening: refuses
    with sock:
        expiring_nat(upstream=sock.getsockname())


def test_kernel_timeout_in_fractions(kernel_nat):
    kernel_nat(tcp_timeout=2.5)


def test_kernel_unknown_after_expiry(kernel_nat):
    kernel_nat(after_expiry="vanish")


@pytest.mark.natprobe(upstream="echo", idle_timeout=0)
def test_marked_zero(expiring_nat):
    pass
"""


def test_bad_input_is_one_clear_error_at_set_up_never_a_hang(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(UPSTREAM_FIXTURE)
    pytester.makepyfile(test_bad=BAD_INPUT)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=60)
    result.assert_outcomes(failed=6, errors=1)
    # Set-up errors (the marker's) are reported first, then the failures in order.
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_marked_zero*",
            "*ValueError: idle_timeout must be a positive number of seconds, not 0",
            "*ValueError: idle_timeout must be a positive number of seconds, not 0",
            "*ValueError: idle_timeout must be a positive number of seconds, not -1",
            "*ValueError: mode must be one of 'drop', 'reset', 'close', not 'vanish'",
            "*ConnectionError: the upstream 127.0.0.1:* does not accept connections*start it before the NAT",
            "*ValueError: tcp_timeout must be a whole number of seconds, 1 or more (conntrack's unit), not 2.5",
            "*ValueError: after_expiry must be one of 'blackhole', 'revive', 'reset', not 'vanish'",
        ],
        consecutive=False,
    )


def test_without_a_lab_kernel_nat_skips_with_the_reason_or_fails_when_required(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a machine without root says; the check itself is the lab's own.
    import probe.lab.netns

    monkeypatch.setattr(probe.lab.netns, "unavailable_reason", lambda: "the kernel NAT lab needs root")
    pytester.makepyfile(test_lab="def test_lab(kernel_nat):\n    kernel_nat()\n")
    monkeypatch.delenv("NATPROBE_REQUIRE_LAB", raising=False)
    skipped = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-rs")
    skipped.assert_outcomes(skipped=1)
    skipped.stdout.fnmatch_lines(["*the kernel NAT lab needs root*"])
    monkeypatch.setenv("NATPROBE_REQUIRE_LAB", "1")
    required = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    required.assert_outcomes(failed=1)
    required.stdout.fnmatch_lines(["*NATPROBE_REQUIRE_LAB=1 and the kernel NAT lab needs root*"])


def test_a_session_that_uses_none_of_it_imports_none_of_the_kit(pytester: pytest.Pytester) -> None:
    # The plugin is loaded in every project with natprobe installed: such a
    # session must not pay for the relays, asyncio or the lab.
    pytester.makepyfile(
        test_plain="""
import sys

def test_plain():
    loaded = {m for m in sys.modules if m == "probe" or m.startswith("probe.")}
    assert loaded == {"probe", "probe.testing", "probe.testing.plugin"}, sorted(loaded)
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(passed=1)
