"""The commands, fed arbitrary target and address text: one line and an exit
code from the README's table, never a traceback.

The commands run in this process (``probe.cli.app.main``, as the console
script runs them) with every socket operation that could leave it refused:
no name is looked up, nothing connects, binds or sends. A well-formed target
is then unreachable (exit 3), a well-formed listen address cannot be bound
(exit 3), and anything else must be a usage error (exit 2).
"""

from __future__ import annotations

import contextlib
import errno
import io
import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from probe.cli.app import main

#: The README's exit codes, per command.
EXIT_CODES = {
    "discover": {0, 1, 2, 3, 130},
    "check": {0, 1, 2, 3, 130},
    "hold": {0, 1, 2, 3, 130},
    "locate": {0, 1, 2, 3, 130},
    "server": {0, 2, 3},
    "emulate": {0, 2, 3},
}

PIECES = st.sampled_from(
    ["tcp://", "udp://", "ws://", "wss://", "[", "]", ":", "::1", "/", "?", "#", "@", "%", "h", "1"]
)
TEXT = st.one_of(st.text(max_size=30), st.lists(st.one_of(PIECES, st.text(max_size=4)), max_size=8).map("".join))


def _refused(*args: Any, **kwargs: Any) -> Any:
    raise OSError(errno.ENETUNREACH, "refused by the test: no traffic leaves it")


@contextlib.contextmanager
def no_network() -> Iterator[None]:
    """Every way out of this process refused, for the duration."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", lambda *a, **k: (_ for _ in ()).throw(socket.gaierror(-2, "refused")))
        for name in ("connect", "connect_ex", "bind", "sendto", "sendmsg"):
            patch.setattr(socket.socket, name, _refused)
        yield


def run(argv: list[str]) -> tuple[int, str]:
    """``natprobe ARGV`` in process: its exit code and what it wrote to stderr."""
    err, out = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with no_network(), pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(err):
        patch.setattr(sys, "argv", ["natprobe", *argv])
        with contextlib.redirect_stdout(out):
            try:
                main()
            except SystemExit as exc:
                code = exc.code
    assert isinstance(code, int), code
    return code, err.getvalue()


def judged(command: str, argv: list[str]) -> None:
    code, err = run([command, *argv])
    assert code in EXIT_CODES[command], (argv, code, err)
    assert "Traceback" not in err, err
    if code != 0:
        assert err.count("\n") == 1 and err.startswith("natprobe"), (argv, err)


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(TEXT)
@example("tcp://[::1")
@example("ws://[::1")
@example("tcp://[zz]:4040")
@example("tcp://127.0.0.1:4040/path")
def test_targets_given_to_discover_check_hold_and_locate(text: str) -> None:
    judged("discover", [text, "--no-save"])
    judged("check", [text, "--idle", "1s", "--no-save"])
    judged("hold", [text, "--duration", "1s"])
    judged("locate", [text])


@FUZZ
@given(TEXT)
def test_control_targets_of_a_udp_discovery(text: str) -> None:
    judged("discover", ["udp://h:1", "--control", text, "--no-save"])


@FUZZ
@given(TEXT)
@example("[zz]:5")
@example("0.0.0.0:99999")
def test_listen_and_upstream_addresses(text: str) -> None:
    judged("server", ["--tcp", text])
    judged("server", ["--ws", text])
    judged("server", ["--udp", text, "--tcp", "127.0.0.1:1"])
    judged("emulate", ["--listen", text, "--upstream", "127.0.0.1:1", "--idle-timeout", "1s"])
    judged("emulate", ["--listen", "127.0.0.1:0", "--upstream", text, "--idle-timeout", "1s"])


def test_a_malformed_target_is_exit_2_and_a_well_formed_one_unreachable_here() -> None:
    assert run(["check", "tcp://[::1", "--idle", "1s", "--no-save"]) == (
        2, "natprobe: invalid target 'tcp://[::1': expected tcp://[IPV6]:PORT, an IPv6 address in brackets\n",
    )  # fmt: skip
    code, err = run(["check", "tcp://[::1]:4040", "--idle", "1s", "--no-save"])
    assert code == 3 and err.startswith("natprobe: ") and err.count("\n") == 1
