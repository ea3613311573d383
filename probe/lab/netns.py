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
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass

CLIENT_IP = "198.18.0.2"
ROUTER_INSIDE_IP = "198.18.0.1"
ROUTER_OUTSIDE_IP = "198.19.0.1"
SERVER_IP = "198.19.0.2"
# IPv6, when asked for: 2001:2::/48 is IPv6's benchmarking space (RFC 5180),
# as 198.18.0.0/15 is IPv4's. No NAT: the router is a stateful firewall.
CLIENT_IP6 = "2001:2:0:1::2"
ROUTER_INSIDE_IP6 = "2001:2:0:1::1"
ROUTER_OUTSIDE_IP6 = "2001:2:0:2::1"
SERVER_IP6 = "2001:2:0:2::2"

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
    #: IPv6 beside IPv4: its firewall's established-TCP timer, or None (no IPv6).
    ipv6_timeout_s: int | None = None
    #: IPv4 TCP to these server ports: their own established timer.
    port_timeouts: tuple[tuple[int, int], ...] = ()

    def exec_args(self, ns: str, argv: Sequence[str]) -> list[str]:
        """argv run inside namespace ``ns``."""
        return ["ip", "netns", "exec", ns, *argv]

    def set_udp_timeouts(self, unreplied_s: int, stream_s: int) -> None:
        """conntrack's UDP timers (per namespace): ``nf_conntrack_udp_timeout``
        until a flow has a reply and a packet 2 s after its first, then
        ``nf_conntrack_udp_timeout_stream``."""
        _run("sysctl", "-qw", f"net.netfilter.nf_conntrack_udp_timeout={unreplied_s}", ns=self.router)
        _run("sysctl", "-qw", f"net.netfilter.nf_conntrack_udp_timeout_stream={stream_s}", ns=self.router)

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


# IPv6 through the router: no NAT, a stateful firewall. Only the client side
# opens flows; what conntrack forgot is invalid (pickup off) and dropped both
# ways, so a push into a forgotten flow dies at the router silently.
_FIREWALL6 = """
table ip6 natprobe_fw6 {
    ct timeout tcp6 {
        protocol tcp
        l3proto ip6
        policy = { established: %(timeout)d }
    }
    chain prerouting {
        type filter hook prerouting priority filter; policy accept;
        meta l4proto tcp ct timeout set "tcp6"
    }
    chain forward {
        type filter hook forward priority 0; policy accept;
        ct state invalid drop
        iifname "rs" ct state new drop
    }
}
"""


def port_timeout_rules(port_timeouts: Sequence[tuple[int, int]]) -> str:
    """nftables ``ct timeout`` policies: IPv4 TCP to each server port gets its
    own established timer, as carriers and firewalls give some ports."""
    objects = "".join(
        f"    ct timeout port{port} {{\n        protocol tcp\n        l3proto ip\n"
        f"        policy = {{ established: {seconds} }}\n    }}\n"
        for port, seconds in port_timeouts
    )
    rules = "".join(f'        tcp dport {port} ct timeout set "port{port}"\n' for port, _ in port_timeouts)
    return (
        "table ip natprobe_ports {\n" + objects + "    chain prerouting {\n"
        "        type filter hook prerouting priority filter; policy accept;\n" + rules + "    }\n}\n"
    )


def namespace_pids(ns: str) -> list[int]:
    """Processes running inside namespace ``ns``."""
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    return [int(word) for word in out.split() if word.isdigit()]


def _end_processes(ns: str) -> None:
    # A namespace outlives `ip netns del` while a process still runs in it:
    # end what a test left there, so nothing of a lab survives it.
    for pid in namespace_pids(ns):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


#: (namespace, device, peer namespace, peer device): a veth pair.
Link = tuple[str, str, str, str]
#: (namespace, device, address/prefix); (namespace, destination, gateway).
Address = tuple[str, str, str]
Route = tuple[str, str, str]


@contextmanager
def _joined(
    namespaces: Sequence[str],
    links: Sequence[Link],
    addresses: Sequence[Address],
    routes: Sequence[Route],
    routers: Sequence[str],
) -> Iterator[None]:
    """Namespaces joined by veth pairs, addressed, routed, ``routers``
    forwarding; removed on exit, whatever happened."""
    created: list[str] = []
    try:
        for ns in namespaces:
            _run("ip", "netns", "add", ns)
            created.append(ns)
            _run("ip", "link", "set", "lo", "up", ns=ns)
        # veth pairs are created on one side and moved: names are per namespace.
        for ns, dev, peer_ns, peer in links:
            _run("ip", "link", "add", dev, "type", "veth", "peer", "name", peer, ns=ns)
            _run("ip", "link", "set", peer, "netns", peer_ns, ns=ns)
        for ns, dev, address in addresses:
            # An IPv6 address waits out duplicate detection (a second or
            # more) before it works; nothing else lives on these links.
            dad = ("nodad",) if ":" in address else ()
            _run("ip", "addr", "add", address, "dev", dev, *dad, ns=ns)
            _run("ip", "link", "set", dev, "up", ns=ns)
        for ns, destination, gateway in routes:
            _run("ip", "route", "add", destination, "via", gateway, ns=ns)
        for ns in routers:
            _run("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=ns)
            _run("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", ns=ns)
        yield
    finally:
        for ns in reversed(created):
            _end_processes(ns)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@contextmanager
def nat_lab(
    timeout_s: int,
    loose: bool = False,
    random_ports: bool = False,
    router_rst: bool = True,
    udp: tuple[int, int] | None = None,
    ipv6_timeout_s: int | None = None,
    port_timeouts: Sequence[tuple[int, int]] = (),
) -> Iterator[NatLab]:
    """Build the three namespaces; remove them on exit, whatever happened.

    ``udp``: conntrack's UDP timers (unreplied or replied, stream) in seconds.
    ``ipv6_timeout_s``: also IPv6 (CLIENT_IP6 to SERVER_IP6), through a
    stateful firewall with this established-TCP timer instead of the NAT.
    ``port_timeouts``: (server port, seconds) pairs: IPv4 TCP to that port
    has its own timer (an nftables ``ct timeout`` policy).
    """
    timers = [timeout_s, *(udp or ()), *([ipv6_timeout_s] if ipv6_timeout_s is not None else [])]
    timers += [seconds for _, seconds in port_timeouts]
    if min(timers) < 1:
        raise ValueError("conntrack timeouts are whole seconds >= 1")
    if any(not 1 <= port <= 65535 for port, _ in port_timeouts):
        raise ValueError("port_timeouts: ports are 1 to 65535")
    tag = f"np{os.getpid()}x{next(_counter)}"
    lab = NatLab(
        client=f"{tag}c",
        router=f"{tag}r",
        server=f"{tag}s",
        timeout_s=timeout_s,
        loose=loose,
        random_ports=random_ports,
        router_rst=router_rst,
        ipv6_timeout_s=ipv6_timeout_s,
        port_timeouts=tuple(port_timeouts),
    )
    client, router, server = lab.client, lab.router, lab.server
    v6 = ipv6_timeout_s is not None
    addresses: list[Address] = [
        (router, "rc", f"{ROUTER_INSIDE_IP}/24"),
        (router, "rs", f"{ROUTER_OUTSIDE_IP}/24"),
        (client, "cr", f"{CLIENT_IP}/24"),
        (server, "sr", f"{SERVER_IP}/24"),
    ]
    routes: list[Route] = [(client, "default", ROUTER_INSIDE_IP)]
    if v6:
        addresses += [
            (router, "rc", f"{ROUTER_INSIDE_IP6}/64"),
            (router, "rs", f"{ROUTER_OUTSIDE_IP6}/64"),
            (client, "cr", f"{CLIENT_IP6}/64"),
            (server, "sr", f"{SERVER_IP6}/64"),
        ]
        # No NAT for IPv6: the server routes back to the client's prefix.
        routes += [(client, "default", ROUTER_INSIDE_IP6), (server, "2001:2:0:1::/64", ROUTER_OUTSIDE_IP6)]
    with _joined(
        (client, router, server),
        links=((router, "rc", client, "cr"), (router, "rs", server, "sr")),
        addresses=addresses,
        routes=routes,
        routers=(router,),
    ):
        _run("nft", "-f", "-", ns=router, input_text=rules(random_ports, router_rst))
        if v6:
            _run("nft", "-f", "-", ns=router, input_text=_FIREWALL6 % {"timeout": ipv6_timeout_s})
        if port_timeouts:
            _run("nft", "-f", "-", ns=router, input_text=port_timeout_rules(port_timeouts))
        lab.set_timeout(timeout_s)
        lab.set_loose(loose)
        if udp is not None:
            lab.set_udp_timeouts(*udp)
        yield lab


# Two routers in a row, for finding *which* hop forgets a flow:
#
#   client 198.18.0.2 -- 198.18.0.1 r1 198.18.1.1 -- 198.18.1.2 r2 198.19.0.1 -- 198.19.0.2 server
#
# ``stateful`` says where the state that times out lives: "hop1" (r1 NATs,
# r2 only routes), "hop2" (r2 NATs, r1 only routes) or "destination" (no NAT;
# a stateful firewall in the server's namespace drops what it forgot).
HOP1_FAR_IP = "198.18.1.1"
HOP2_NEAR_IP = "198.18.1.2"

# A host firewall that forgets: packets of a flow it no longer tracks are
# dropped both ways, so the server's own push into it never leaves.
_FIREWALL = """
table ip natprobe_fw {
    chain input {
        type filter hook input priority 0; policy accept;
        ct state invalid drop
    }
    chain output {
        type filter hook output priority 0; policy accept;
        ct state invalid drop
    }
}
"""


@dataclass(frozen=True)
class HopLab:
    client: str
    routers: tuple[str, str]
    server: str
    stateful: str

    def exec_args(self, ns: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", ns, *argv]


@contextmanager
def hop_lab(timeout_s: int, stateful: str = "hop2") -> Iterator[HopLab]:
    """Build client, two routers and server; remove them on exit."""
    if stateful not in ("hop1", "hop2", "destination"):
        raise ValueError("stateful is hop1, hop2 or destination")
    if timeout_s < 1:
        raise ValueError("conntrack timeouts are whole seconds >= 1")
    tag = f"np{os.getpid()}h{next(_counter)}"
    lab = HopLab(client=f"{tag}c", routers=(f"{tag}a", f"{tag}b"), server=f"{tag}s", stateful=stateful)
    r1, r2 = lab.routers
    with _joined(
        (lab.client, r1, r2, lab.server),
        links=((r1, "ac", lab.client, "ca"), (r1, "ab", r2, "ba"), (r2, "bs", lab.server, "sb")),
        addresses=(
            (lab.client, "ca", f"{CLIENT_IP}/24"),
            (r1, "ac", f"{ROUTER_INSIDE_IP}/24"),
            (r1, "ab", f"{HOP1_FAR_IP}/24"),
            (r2, "ba", f"{HOP2_NEAR_IP}/24"),
            (r2, "bs", f"{ROUTER_OUTSIDE_IP}/24"),
            (lab.server, "sb", f"{SERVER_IP}/24"),
        ),
        routes=(
            (lab.client, "default", ROUTER_INSIDE_IP),
            (r1, "default", HOP2_NEAR_IP),
            (r2, "198.18.0.0/24", HOP1_FAR_IP),
            (lab.server, "default", ROUTER_OUTSIDE_IP),
        ),
        routers=(r1, r2),
    ):
        if stateful == "destination":
            state_ns = lab.server
            _run("nft", "-f", "-", ns=state_ns, input_text=_FIREWALL)
        else:
            state_ns = r1 if stateful == "hop1" else r2
            out_dev, source = ("ab", "198.18.0.0/24") if stateful == "hop1" else ("bs", "198.18.0.0/16")
            ruleset = _RULES % {"input": "", "masquerade": ""}
            ruleset = ruleset.replace('ip saddr 198.18.0.0/24 oifname "rs"', f'ip saddr {source} oifname "{out_dev}"')
            _run("nft", "-f", "-", ns=state_ns, input_text=ruleset)
        _run("sysctl", "-qw", f"net.netfilter.nf_conntrack_tcp_timeout_established={timeout_s}", ns=state_ns)
        _run("sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0", ns=state_ns)
        yield lab
