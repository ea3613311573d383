"""Turn a measured bracket into settings that keep connections alive."""

from __future__ import annotations

from dataclasses import dataclass, field

from probe.core.designs import Design, DesignOutcome, cheapest_kept, verdict
from probe.core.evidence import Bracket
from probe.core.model import key

#: Keepalive fires at this fraction of the shortest idle proven to survive,
#: leaving room for timer slack, a lost probe and a NAT that sweeps early.
MARGIN = 0.8


def recommended_interval(bracket: Bracket) -> float | None:
    """An interval (s) that keeps this path alive, or None without a failure.

    Only a measured failure makes an interval: the longest idle that survived
    a run which stopped early (budget, --max-idle, Ctrl-C) is no timeout, and
    an interval derived from it would make every connection chatty for nothing.
    """
    if bracket.upper is None:
        return None
    # When even the shortest test failed, stay well below it.
    base = bracket.lower if bracket.lower is not None and bracket.lower > 0 else bracket.upper / 2
    interval = base * MARGIN
    # Whole seconds where they matter little (the kernel's keepalive options
    # take whole seconds); always rounded down, never past the margin.
    return float(int(interval)) if interval >= 10 else int(interval * 10) / 10


def keepalive_probe_interval(idle_s: int) -> int:
    """TCP_KEEPINTVL for a keepalive idle time.

    Probes only matter once one goes unanswered: keep them short so a dead
    peer is noticed within about twice the idle time.
    """
    return max(1, min(75, idle_s // 4 or 1))


@dataclass(frozen=True)
class LinuxSysctl:
    tcp_keepalive_time: int = field(metadata=key("net.ipv4.tcp_keepalive_time"))
    tcp_keepalive_intvl: int = field(metadata=key("net.ipv4.tcp_keepalive_intvl"))
    tcp_keepalive_probes: int = field(metadata=key("net.ipv4.tcp_keepalive_probes"))


@dataclass(frozen=True)
class SocketOptions:
    so_keepalive: int = field(metadata=key("SO_KEEPALIVE"))
    tcp_keepidle: int = field(metadata=key("TCP_KEEPIDLE"))
    tcp_keepintvl: int = field(metadata=key("TCP_KEEPINTVL"))
    tcp_keepcnt: int = field(metadata=key("TCP_KEEPCNT"))


@dataclass(frozen=True)
class Recommendations:
    """Settings to copy (schema: natprobe.discover/1 ``recommendations``)."""

    interval_s: float
    #: Kernel keepalive: None where the design connection proved it does not
    #: keep this path (something between answers the probes itself).
    linux_sysctl: LinuxSysctl | None
    socket_options: SocketOptions | None
    #: None where the WebSocket ping design was tried and did not keep the path.
    websocket_ping_interval_s: float | None
    #: What to change on a proxy or load balancer that closed or reset flows.
    proxy: str | None
    #: The cheapest design proven on this path to keep the flow (designs.md).
    design: Design | None = None


#: What a proxy that closed or reset idle flows needs, by failure mode.
PROXY_ADVICE = {
    "closed": (
        "flows were closed, as proxies and L7 load balancers do: raise their idle timeout above your "
        "heartbeat (nginx proxy_read_timeout / proxy_send_timeout, HAProxy timeout client/server/tunnel, "
        "AWS ALB idle_timeout.timeout_seconds), or send heartbeats the server answers"
    ),
    "reset": (
        "flows were reset: a load balancer or firewall configured to reset idle flows "
        "(e.g. Azure LB with TCP reset); raise its idle timeout or keep heartbeats below it"
    ),
}


def recommendations(
    bracket: Bracket, failure_mode: str | None, designs: dict[Design, DesignOutcome] | None = None
) -> Recommendations | None:
    """Settings to copy, derived from the bracket, leaving out what the design
    connections proved does not keep the path. None without a measured failure."""
    interval = recommended_interval(bracket)
    if interval is None:
        return None
    idle = max(1, int(interval))
    probe_interval = keepalive_probe_interval(idle)
    probes = 3
    # Left out only where proven not to keep the path; not tried, they stay.
    kernel = verdict(designs, Design.TCP_KEEPALIVE) is not False
    return Recommendations(
        interval_s=interval,
        linux_sysctl=LinuxSysctl(idle, probe_interval, probes) if kernel else None,
        socket_options=SocketOptions(1, idle, probe_interval, probes) if kernel else None,
        websocket_ping_interval_s=None if verdict(designs, Design.WS_PING) is False else interval,
        proxy=PROXY_ADVICE.get(failure_mode or ""),
        design=None if designs is None else cheapest_kept(designs),
    )
