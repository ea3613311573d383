"""``local``'s result: what this host is, as far as idle connections care."""

from __future__ import annotations

from dataclasses import dataclass, field

from probe.core.model import Model


@dataclass(frozen=True)
class Address:
    address: str
    family: str
    netmask: str | None
    #: loopback, link-local, private or public.
    scope: str


@dataclass(frozen=True)
class Interface:
    name: str
    up: bool
    addresses: list[Address]


@dataclass(frozen=True)
class KeepaliveDefaults:
    """The kernel's system-wide keepalive (Linux); None where the OS does not say."""

    idle_s: int | None
    interval_s: int | None
    count: int | None


@dataclass(frozen=True)
class NatprobeProcess:
    """A natprobe process on this host (a long probe, a server) and its inet sockets."""

    pid: int
    command: str
    sockets: int
    #: How many sockets in each TCP state.
    states: dict[str, int]


@dataclass(frozen=True)
class LocalFacts(Model):
    """(schema: ``natprobe.local/1``)"""

    schema: str = field(default="natprobe.local/1", kw_only=True)
    platform: str
    interfaces: list[Interface]
    default_route_interface: str | None
    private_only: bool
    likely_behind_nat: bool
    keepalive_defaults: KeepaliveDefaults
    supported_options: dict[str, bool]
    natprobe_sockets: list[NatprobeProcess]


def private_only(interfaces: list[Interface]) -> bool:
    """Only private addresses on the interfaces that are up: likely behind NAT."""
    routable = [a.scope for i in interfaces if i.up for a in i.addresses if a.scope in ("private", "public")]
    return bool(routable) and "public" not in routable
