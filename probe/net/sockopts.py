"""Kernel keepalive options per OS, and TCP_INFO counters.

Linux: SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_USER_TIMEOUT.
macOS: the idle time is TCP_KEEPALIVE (not TCP_KEEPIDLE); TCP_KEEPINTVL and
TCP_KEEPCNT on current releases. Windows 10 1709+: TCP_KEEPIDLE, TCP_KEEPINTVL,
TCP_KEEPCNT. An option the OS lacks raises UnsupportedOption: a keepalive
setting that silently does nothing would make the measurement a lie.
"""

from __future__ import annotations

import math
import socket
import struct
import sys

from probe.core.keepalive import KeepaliveInForce, KeepaliveSettings
from probe.errors import UnsupportedOption, UsageError

# macOS names the idle option TCP_KEEPALIVE (0x10); Python exposes it only on
# some builds.
_DARWIN_TCP_KEEPALIVE = 0x10


def _whole_seconds(name: str, value: float) -> int:
    # The kernel takes whole seconds; round up so that a setting never probes
    # earlier than asked.
    seconds = math.ceil(value - 1e-9)
    if seconds < 1:
        raise UsageError(f"{name} must be at least 1s (the kernel counts whole seconds)")
    if seconds > 32767:
        raise UsageError(f"{name} must be at most 32767s")
    return seconds


def idle_option() -> tuple[int, int]:
    """(level, option) for the keepalive idle time on this OS."""
    if hasattr(socket, "TCP_KEEPIDLE"):
        return socket.IPPROTO_TCP, socket.TCP_KEEPIDLE
    if sys.platform == "darwin":
        return socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPALIVE", _DARWIN_TCP_KEEPALIVE)
    raise UnsupportedOption(f"this OS ({sys.platform}) has no keepalive idle-time socket option")


def _option(name: str) -> int:
    value = getattr(socket, name, None)
    if value is None:
        raise UnsupportedOption(f"this OS ({sys.platform}) has no {name} socket option")
    return int(value)


def supported_options() -> dict[str, bool]:
    """Which keepalive-related options this OS offers."""
    result: dict[str, bool] = {}
    for label, name in (
        ("keepalive_idle", "TCP_KEEPIDLE"),
        ("keepalive_interval", "TCP_KEEPINTVL"),
        ("keepalive_count", "TCP_KEEPCNT"),
        ("user_timeout", "TCP_USER_TIMEOUT"),
    ):
        result[label] = hasattr(socket, name) or (label == "keepalive_idle" and sys.platform == "darwin")
    result["tcp_info"] = hasattr(socket, "TCP_INFO")
    return result


def _windows_keepalive_vals(sock: socket.socket, settings: KeepaliveSettings) -> None:
    """Windows before 10 1709: SIO_KEEPALIVE_VALS sets idle and interval; the
    probe count is fixed at 10 and cannot be chosen."""
    if settings.count is not None:
        raise UnsupportedOption("this Windows fixes the keepalive probe count at 10; drop --keepalive-count")
    idle_ms = _whole_seconds("--keepalive-idle", settings.idle_s or 7200) * 1000
    interval_ms = _whole_seconds("--keepalive-interval", settings.interval_s or 1) * 1000
    sock.ioctl(socket.SIO_KEEPALIVE_VALS, (1, idle_ms, interval_ms))  # type: ignore[attr-defined]


def apply_keepalive(sock: socket.socket, settings: KeepaliveSettings) -> None:
    """Set the options on ``sock``; raise UnsupportedOption for a missing one."""
    if settings.enabled and sys.platform == "win32" and not hasattr(socket, "TCP_KEEPIDLE"):
        _windows_keepalive_vals(sock, settings)
    elif settings.enabled:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if settings.idle_s is not None:
            level, opt = idle_option()
            sock.setsockopt(level, opt, _whole_seconds("--keepalive-idle", settings.idle_s))
        if settings.interval_s is not None:
            sock.setsockopt(
                socket.IPPROTO_TCP,
                _option("TCP_KEEPINTVL"),
                _whole_seconds("--keepalive-interval", settings.interval_s),
            )
        if settings.count is not None:
            if not 1 <= settings.count <= 127:
                raise UsageError("--keepalive-count must be from 1 to 127")
            sock.setsockopt(socket.IPPROTO_TCP, _option("TCP_KEEPCNT"), settings.count)
    if settings.user_timeout_s is not None:
        millis = int(settings.user_timeout_s * 1000)
        if millis < 1:
            raise UsageError("--user-timeout must be at least 1ms")
        sock.setsockopt(socket.IPPROTO_TCP, _option("TCP_USER_TIMEOUT"), millis)


def set_user_timeout(sock: socket.socket | None, seconds: float | None) -> bool:
    """Set TCP_USER_TIMEOUT where the OS has it; True if it was set.

    For the server's own sockets, where a missing option only means the
    kernel default stays in force (nothing is being measured with it).
    """
    option = getattr(socket, "TCP_USER_TIMEOUT", None)
    if sock is None or seconds is None or option is None:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, option, max(1, int(seconds * 1000)))
    except OSError:
        return False
    return True


def read_keepalive(sock: socket.socket) -> KeepaliveInForce:
    """The keepalive settings in force on ``sock``, read back from the kernel."""
    try:
        level, opt = idle_option()
        idle: int | None = sock.getsockopt(level, opt)
    except (UnsupportedOption, OSError):
        idle = None
    interval, count = (
        sock.getsockopt(socket.IPPROTO_TCP, value) if (value := getattr(socket, name, None)) is not None else None
        for name in ("TCP_KEEPINTVL", "TCP_KEEPCNT")
    )
    user = getattr(socket, "TCP_USER_TIMEOUT", None)
    return KeepaliveInForce(
        enabled=bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)),
        idle_s=idle,
        interval_s=interval,
        count=count,
        user_timeout_s=sock.getsockopt(socket.IPPROTO_TCP, user) / 1000 if user is not None else None,
    )


# Linux struct tcp_info, up to tcpi_total_retrans (stable since 2.6).
_TCP_INFO = struct.Struct("=7B1x24I")
_TCP_INFO_FIELDS = (
    "state", "ca_state", "retransmits", "probes", "backoff", "options", "wscale",
    "rto_us", "ato_us", "snd_mss", "rcv_mss", "unacked", "sacked", "lost", "retrans", "fackets",
    "last_data_sent_ms", "last_ack_sent_ms", "last_data_recv_ms", "last_ack_recv_ms",
    "pmtu", "rcv_ssthresh", "rtt_us", "rttvar_us", "snd_ssthresh", "snd_cwnd", "advmss", "reordering",
    "rcv_rtt_us", "rcv_space", "total_retrans",
)  # fmt: skip
_KEEP = (
    "state", "retransmits", "probes", "backoff", "rto_us", "unacked", "lost", "retrans",
    "last_data_sent_ms", "last_data_recv_ms", "last_ack_recv_ms", "rtt_us", "rttvar_us", "total_retrans",
)  # fmt: skip


def tcp_info(sock: socket.socket) -> dict[str, int] | None:
    """Selected TCP_INFO counters, or None where the OS has no TCP_INFO."""
    option = getattr(socket, "TCP_INFO", None)
    if option is None or sys.platform != "linux":
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, option, 256)
    except OSError:
        return None
    if len(raw) < _TCP_INFO.size:
        return None
    values = dict(zip(_TCP_INFO_FIELDS, _TCP_INFO.unpack_from(raw), strict=True))
    return {key: values[key] for key in _KEEP}
