from __future__ import annotations

import socket
import sys

import pytest

from probe.core.keepalive import KeepaliveSettings
from probe.core.model import to_json
from probe.errors import UnsupportedOption, UsageError
from probe.net.sockopts import apply_keepalive, read_keepalive, supported_options, tcp_info

linux = pytest.mark.skipif(sys.platform != "linux", reason="Linux socket options")


@linux
def test_each_keepalive_option_reaches_the_socket() -> None:
    with socket.socket() as sock:
        apply_keepalive(sock, KeepaliveSettings(idle_s=31, interval_s=7, count=4, user_timeout_s=12.5))
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 31
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 7
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 4
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 12500
        assert to_json(read_keepalive(sock)) == {
            "enabled": True, "idle_s": 31, "interval_s": 7, "count": 4, "user_timeout_s": 12.5,
        }  # fmt: skip


@linux
def test_fractional_seconds_round_up_never_down() -> None:
    with socket.socket() as sock:
        apply_keepalive(sock, KeepaliveSettings(idle_s=1.2))
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 2


def test_no_settings_leave_keepalive_off() -> None:
    with socket.socket() as sock:
        apply_keepalive(sock, KeepaliveSettings())
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0


@pytest.mark.parametrize("settings", [KeepaliveSettings(interval_s=40000), KeepaliveSettings(count=0)])
def test_out_of_range_values_are_usage_errors(settings: KeepaliveSettings) -> None:
    with socket.socket() as sock, pytest.raises(UsageError):
        apply_keepalive(sock, settings)


def test_an_option_the_os_lacks_is_an_error_not_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    # Stand in for an OS without TCP_KEEPCNT (older Windows) by hiding it.
    monkeypatch.delattr(socket, "TCP_KEEPCNT", raising=False)
    with socket.socket() as sock, pytest.raises(UnsupportedOption, match="TCP_KEEPCNT"):
        apply_keepalive(sock, KeepaliveSettings(count=3))
    assert supported_options()["keepalive_count"] is False


@linux
def test_tcp_info_reads_counters_of_a_live_connection() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener, socket.create_connection(listener.getsockname()) as client:
        peer, _ = listener.accept()
        with peer:
            client.sendall(b"x")
            assert peer.recv(1) == b"x"
            info = tcp_info(client)
    assert info is not None
    assert info["state"] == 1  # TCP_ESTABLISHED
    assert info["total_retrans"] == 0


def test_connect_errors_name_their_cause() -> None:
    import errno

    from probe.net.client import describe_connect_error

    where = "probe.example:4040"
    assert describe_connect_error(socket.gaierror(-2, "Name or service not known"), where) == (
        "cannot resolve probe.example:4040: Name or service not known"
    )
    assert describe_connect_error(ConnectionRefusedError(), where) == "connection to probe.example:4040 refused"
    unreachable = OSError(errno.ENETUNREACH, "Network is unreachable")
    assert describe_connect_error(unreachable, where) == "probe.example:4040 is unreachable: Network is unreachable"
    assert describe_connect_error(TimeoutError(), where) == "connection to probe.example:4040 timed out"
