"""Local system facts for ``natprobe local``: interfaces, routes, keepalive defaults."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path

import psutil

from probe.core.local import Address, Interface, KeepaliveDefaults, LocalFacts, NatprobeProcess, private_only
from probe.net.sockopts import supported_options

_KEEPALIVE_FILES = {
    "idle_s": "tcp_keepalive_time",
    "interval_s": "tcp_keepalive_intvl",
    "count": "tcp_keepalive_probes",
}


def keepalive_defaults(proc_dir: Path = Path("/proc/sys/net/ipv4")) -> KeepaliveDefaults:
    """The kernel's keepalive defaults (Linux); None where the OS does not say."""
    result: dict[str, int | None] = {}
    for key, name in _KEEPALIVE_FILES.items():
        try:
            result[key] = int((proc_dir / name).read_text().strip())
        except (OSError, ValueError):
            result[key] = None
    return KeepaliveDefaults(**result)


def default_route_interface(route_file: Path = Path("/proc/net/route")) -> str | None:
    """The interface of the IPv4 default route (Linux), or None."""
    try:
        lines = route_file.read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000":
            return fields[0]
    return None


def _scope(address: str) -> str:
    ip = ipaddress.ip_address(address.split("%")[0])
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_global:
        return "public"
    return "private"


def interfaces() -> list[Interface]:
    stats = psutil.net_if_stats()
    result = []
    for name, addrs in sorted(psutil.net_if_addrs().items()):
        addresses = []
        for addr in addrs:
            if addr.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            family = "ipv4" if addr.family == socket.AF_INET else "ipv6"
            addresses.append(Address(addr.address, family, addr.netmask, _scope(addr.address)))
        stat = stats.get(name)
        result.append(Interface(name, bool(stat and stat.isup), addresses))
    return result


def _is_natprobe(cmdline: list[str]) -> bool:
    joined = " ".join(cmdline)
    return "natprobe" in joined or " -m probe" in f" {joined}"


def natprobe_sockets() -> list[NatprobeProcess]:
    """Open inet sockets of natprobe processes on this host (a long probe
    running in another terminal, a server), this one included."""
    found: list[NatprobeProcess] = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmdline = proc.info.get("cmdline") or []
            if proc.pid != os.getpid() and not _is_natprobe(cmdline):
                continue
            conns = proc.net_connections(kind="inet")
        except (psutil.Error, OSError):
            continue
        if proc.pid != os.getpid() or conns:
            states: dict[str, int] = {}
            for conn in conns:
                states[conn.status] = states.get(conn.status, 0) + 1
            found.append(NatprobeProcess(proc.pid, " ".join(cmdline)[:120], len(conns), states))
    return found


def local_facts() -> LocalFacts:
    ifaces = interfaces()
    alone = private_only(ifaces)
    return LocalFacts(
        platform=sys.platform,
        interfaces=ifaces,
        default_route_interface=default_route_interface(),
        private_only=alone,
        likely_behind_nat=alone,
        keepalive_defaults=keepalive_defaults(),
        supported_options=supported_options(),
        natprobe_sockets=natprobe_sockets(),
    )
