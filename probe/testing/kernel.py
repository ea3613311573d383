"""The real kernel NAT, for an application's own tests: root and namespaces.

``KernelNat`` builds natprobe's lab (probe/lab/netns.py): a client namespace,
a router that masquerades with nftables and forgets idle flows on conntrack's
own timers, and a server namespace. Programs run in either end with
``server(argv)`` and ``client(argv)``; the client reaches the server at
``server_ip`` through the NAT. Unlike a userspace relay, the router sees
every packet, kernel keepalive probes included.

``after_expiry`` says what a packet of a forgotten flow meets:

* ``blackhole``: the client's packet is dropped (no mid-stream pickup);
* ``revive``: it re-creates the mapping on the same port, and the router
  drops the server's packets into the forgotten flow silently;
* ``reset``: it re-creates the mapping on a new port, so the server,
  not knowing the flow, resets it.

``loose``, ``random_ports`` and ``router_rst`` set the lab's switches one by
one where the three words are not enough (docs/lab.md).

``ipv6_tcp_timeout`` adds IPv6 (``server_ip6``, ``client_ip6``) through a
stateful firewall with that timer, no NAT; ``port_tcp_timeouts`` gives IPv4
TCP to some server ports timers of their own. ``client_hosts`` names
addresses for the client side's resolver, as a dual-stack DNS name would.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from probe.lab.conntrack import ConntrackFlow, flows
from probe.lab.netns import (
    CLIENT_IP,
    CLIENT_IP6,
    ROUTER_OUTSIDE_IP,
    SERVER_IP,
    SERVER_IP6,
    LabUnavailable,
    NatLab,
    nat_lab,
    unavailable_reason,
)

#: ``ip netns exec NS`` mounts /etc/netns/NS/hosts over /etc/hosts.
NETNS_ETC = Path("/etc/netns")

#: after_expiry -> the lab's switches (loose, random_ports, router_rst).
AFTER_EXPIRY = {
    "blackhole": (False, False, True),
    "revive": (True, False, False),
    "reset": (True, True, True),
}

#: How long a program of the test gets to end after SIGTERM, before SIGKILL.
STOP_GRACE_S = 5.0


def whole_seconds(name: str, value: object) -> int:
    """conntrack counts whole seconds: ``value`` as one, or ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < 1:
        raise ValueError(f"{name} must be a whole number of seconds, 1 or more (conntrack's unit), not {value!r}")
    return int(value)


def _forget_hosts(namespace: str) -> None:
    folder = NETNS_ETC / namespace
    with contextlib.suppress(FileNotFoundError):
        (folder / "hosts").unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()


class KernelNat:
    server_ip = SERVER_IP
    client_ip = CLIENT_IP
    #: The address the server sees the client's flows come from.
    public_ip = ROUTER_OUTSIDE_IP
    #: With ``ipv6_tcp_timeout``: IPv6 addresses, routed (no NAT) through the firewall.
    server_ip6 = SERVER_IP6
    client_ip6 = CLIENT_IP6

    def __init__(
        self,
        tcp_timeout: int = 5,
        udp_timeout: int = 30,
        udp_stream_timeout: int = 120,
        after_expiry: str = "blackhole",
        *,
        loose: bool | None = None,
        random_ports: bool | None = None,
        router_rst: bool | None = None,
        ipv6_tcp_timeout: int | None = None,
        port_tcp_timeouts: Mapping[int, int] | None = None,
    ) -> None:
        self.tcp_timeout = whole_seconds("tcp_timeout", tcp_timeout)
        self.ipv6_tcp_timeout = (
            None if ipv6_tcp_timeout is None else whole_seconds("ipv6_tcp_timeout", ipv6_tcp_timeout)
        )
        self.port_tcp_timeouts = {
            int(port): whole_seconds(f"port_tcp_timeouts[{port}]", seconds)
            for port, seconds in (port_tcp_timeouts or {}).items()
        }
        if any(not 1 <= port <= 65535 for port in self.port_tcp_timeouts):
            raise ValueError("port_tcp_timeouts: ports are 1 to 65535")
        self.udp_timeout = whole_seconds("udp_timeout", udp_timeout)
        self.udp_stream_timeout = whole_seconds("udp_stream_timeout", udp_stream_timeout)
        if after_expiry not in AFTER_EXPIRY:
            words = ", ".join(repr(w) for w in AFTER_EXPIRY)
            raise ValueError(f"after_expiry must be one of {words}, not {after_expiry!r}")
        self.after_expiry = after_expiry
        default = AFTER_EXPIRY[after_expiry]
        self._switches = tuple(
            d if v is None else v for v, d in zip((loose, random_ports, router_rst), default, strict=True)
        )
        self._stack: contextlib.ExitStack | None = None
        self._lab: NatLab | None = None
        self._procs: list[subprocess.Popen[Any]] = []

    @property
    def lab(self) -> NatLab:
        """The namespaces (``lab.client``, ``lab.router``, ``lab.server``), for what the methods do not cover."""
        if self._lab is None:
            raise RuntimeError("the kernel NAT is not built: use it as a context manager or start() it")
        return self._lab

    def start(self) -> Self:
        if self._lab is not None:
            return self
        reason = unavailable_reason()
        if reason is not None:
            raise LabUnavailable(reason)
        loose, random_ports, router_rst = self._switches
        with contextlib.ExitStack() as stack:
            self._lab = stack.enter_context(
                nat_lab(
                    self.tcp_timeout, loose=loose, random_ports=random_ports, router_rst=router_rst,
                    udp=(self.udp_timeout, self.udp_stream_timeout), ipv6_timeout_s=self.ipv6_tcp_timeout,
                    port_timeouts=tuple(self.port_tcp_timeouts.items()),
                )
            )  # fmt: skip
            stack.callback(_forget_hosts, self._lab.client)
            self._stack = stack.pop_all()
        return self

    def _run(self, ns: str, argv: Sequence[str], popen_kwargs: dict[str, Any]) -> subprocess.Popen[Any]:
        if isinstance(argv, str):
            raise TypeError("argv is a list of words, not one string")
        proc: subprocess.Popen[Any] = subprocess.Popen(self.lab.exec_args(ns, list(argv)), **popen_kwargs)
        self._procs.append(proc)
        return proc

    def server(self, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
        """``argv`` running in the server's namespace (it listens on ``server_ip``)."""
        return self._run(self.lab.server, argv, popen_kwargs)

    def client(self, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
        """``argv`` running in the client's namespace, behind the NAT."""
        return self._run(self.lab.client, argv, popen_kwargs)

    def conntrack(self) -> list[ConntrackFlow]:
        """The flows the router tracks now, each with its seconds left."""
        return flows(self.lab.router)

    def client_hosts(self, names: Mapping[str, Sequence[str]]) -> None:
        """Names the client side resolves (its own /etc/hosts), e.g.
        ``{"dual.test": [nat.server_ip, nat.server_ip6]}``; removed on close."""
        folder = NETNS_ETC / self.lab.client
        folder.mkdir(parents=True, exist_ok=True)
        lines = [f"{address} {name}" for name, addresses in names.items() for address in addresses]
        (folder / "hosts").write_text("\n".join(["127.0.0.1 localhost", *lines]) + "\n")

    def set_tcp_timeout(self, seconds: int) -> None:
        """A new conntrack timeout for established TCP flows (live ones keep theirs until their next packet)."""
        self.lab.set_timeout(whole_seconds("tcp_timeout", seconds))
        self.tcp_timeout = int(seconds)

    def close(self) -> None:
        """End every program started here, then remove the namespaces. Safe to call twice."""
        procs, self._procs = self._procs, []
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.communicate(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
        stack, self._stack, self._lab = self._stack, None, None
        if stack is not None:
            stack.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
