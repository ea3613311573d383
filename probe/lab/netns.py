"""A real kernel NAT on one machine: three network namespaces and nftables.

    client (198.18.0.2) --veth-- router (198.18.0.1 | 198.19.0.1) --veth-- server (198.19.0.2)

The router forwards and masquerades with nftables, with its own conntrack
timeout for established TCP flows (the sysctl is per namespace) and a switch
for mid-stream pickup (``nf_conntrack_tcp_loose``). With pickup off, packets of
a forgotten flow are INVALID and dropped, as on a strict NAT.

Two more switches decide what happens after a flow is forgotten:

* ``random_ports``: masquerade ``fully-random``, so a flow re-created by
  mid-stream pickup gets a new public port (as a busy carrier NAT does) and
  the server, not knowing it, answers with RST;
* ``router_rst``: a server packet for a forgotten flow is addressed to the
  router itself. With True the router's own TCP stack answers it with RST
  (Linux's default); with False it is dropped silently, as a firewall's
  input policy or a carrier NAT does, and the server retransmits into a
  black hole. Addresses come
from 198.18.0.0/15 (RFC 2544 benchmarking space) and exist only inside the
namespaces, so no traffic can leave them.

Needs root, ``ip`` (iproute2) and ``nft`` (nftables). Namespace names are
unique per lab and always removed, also when the code using them fails.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

CLIENT_IP = "198.18.0.2"
ROUTER_INSIDE_IP = "198.18.0.1"
ROUTER_OUTSIDE_IP = "198.19.0.1"
SERVER_IP = "198.19.0.2"

_counter = itertools.count()


class LabUnavailable(RuntimeError):
    """This machine cannot build the lab (not root, no ip or nft, no netns)."""


def unavailable_reason() -> str | None:
    """Why the lab cannot run here, or None if it can."""
    if os.geteuid() != 0:
        return "the kernel NAT lab needs root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"the kernel NAT lab needs `{tool}` (apt-get install iproute2 nftables)"
    name = f"npchk{os.getpid()}"
    probe = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"network namespaces are unavailable: {probe.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def _run(*args: str, ns: str | None = None, input_text: str | None = None) -> str:
    cmd = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, input=input_text)
    if proc.returncode != 0:
        raise LabUnavailable(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    return proc.stdout


@dataclass(frozen=True)
class NatLab:
    client: str
    router: str
    server: str
    timeout_s: int
    loose: bool
    random_ports: bool = False
    router_rst: bool = True

    def exec_args(self, ns: str, argv: Sequence[str]) -> list[str]:
        """argv run inside namespace ``ns``."""
        return ["ip", "netns", "exec", ns, *argv]

    def set_timeout(self, seconds: int) -> None:
        _run("sysctl", "-qw", f"net.netfilter.nf_conntrack_tcp_timeout_established={seconds}", ns=self.router)

    def set_loose(self, loose: bool) -> None:
        _run("sysctl", "-qw", f"net.netfilter.nf_conntrack_tcp_loose={int(loose)}", ns=self.router)


_RULES = """
table ip natprobe_lab {
    chain forward {
        type filter hook forward priority 0; policy accept;
        # A strict NAT drops what conntrack cannot place (pickup off).
        ct state invalid drop
    }
    chain input {
        type filter hook input priority 0; policy accept;
        %(input)s
    }
    chain postrouting {
        type nat hook postrouting priority 100; policy accept;
        ip saddr 198.18.0.0/24 oifname "rs" masquerade %(masquerade)s
    }
}
"""

# Unsolicited TCP from the outside (a push into a forgotten flow): conntrack
# calls it new (pickup on) or invalid (pickup off); either way, no RST.
_SILENT_INPUT = 'iifname "rs" meta l4proto tcp ct state new,invalid drop'


def rules(random_ports: bool = False, router_rst: bool = True) -> str:
    """The router's nftables ruleset for these switches."""
    return _RULES % {
        "input": "" if router_rst else _SILENT_INPUT,
        "masquerade": "fully-random" if random_ports else "",
    }


@contextmanager
def nat_lab(
    timeout_s: int, loose: bool = False, random_ports: bool = False, router_rst: bool = True
) -> Iterator[NatLab]:
    """Build the three namespaces; remove them on exit, whatever happened."""
    if timeout_s < 1:
        raise ValueError("conntrack timeouts are whole seconds >= 1")
    tag = f"np{os.getpid()}x{next(_counter)}"
    lab = NatLab(
        client=f"{tag}c",
        router=f"{tag}r",
        server=f"{tag}s",
        timeout_s=timeout_s,
        loose=loose,
        random_ports=random_ports,
        router_rst=router_rst,
    )
    created: list[str] = []
    try:
        for ns in (lab.client, lab.router, lab.server):
            _run("ip", "netns", "add", ns)
            created.append(ns)
            _run("ip", "link", "set", "lo", "up", ns=ns)
        # veth pairs are created in the router and moved: names are per namespace.
        _run("ip", "link", "add", "rc", "type", "veth", "peer", "name", "cr", ns=lab.router)
        _run("ip", "link", "set", "cr", "netns", lab.client, ns=lab.router)
        _run("ip", "link", "add", "rs", "type", "veth", "peer", "name", "sr", ns=lab.router)
        _run("ip", "link", "set", "sr", "netns", lab.server, ns=lab.router)
        _run("ip", "addr", "add", f"{ROUTER_INSIDE_IP}/24", "dev", "rc", ns=lab.router)
        _run("ip", "addr", "add", f"{ROUTER_OUTSIDE_IP}/24", "dev", "rs", ns=lab.router)
        _run("ip", "addr", "add", f"{CLIENT_IP}/24", "dev", "cr", ns=lab.client)
        _run("ip", "addr", "add", f"{SERVER_IP}/24", "dev", "sr", ns=lab.server)
        for ns, dev in ((lab.router, "rc"), (lab.router, "rs"), (lab.client, "cr"), (lab.server, "sr")):
            _run("ip", "link", "set", dev, "up", ns=ns)
        _run("ip", "route", "add", "default", "via", ROUTER_INSIDE_IP, ns=lab.client)
        _run("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=lab.router)
        _run("nft", "-f", "-", ns=lab.router, input_text=rules(random_ports, router_rst))
        lab.set_timeout(timeout_s)
        lab.set_loose(loose)
        yield lab
    finally:
        for ns in reversed(created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
