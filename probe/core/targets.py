"""Parse targets: ``tcp://HOST:PORT``, ``ws://HOST:PORT/PATH``, ``HOST:PORT``."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import SplitResult, urlsplit

from probe.errors import UsageError

#: natprobe's ports when none is given: ``tcp://HOST`` and ``server --tcp HOST``
#: mean 4040, ``server --ws HOST`` means 8080 (ws:// URLs keep HTTP's 80/443).
DEFAULT_TCP_PORT = 4040
DEFAULT_WS_PORT = 8080


def url_host(host: str) -> str:
    """A host as it stands in a URL or before ``:PORT``: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host else host


def format_address(host: str, port: int) -> str:
    """``host:port`` or ``[v6]:port``: the one way natprobe writes an address."""
    return f"{url_host(host)}:{port}"


class Scheme(StrEnum):
    """A target's URL scheme. String-valued: it compares, prints and
    serialises as the word the user typed."""

    TCP = "tcp"
    UDP = "udp"
    WS = "ws"
    WSS = "wss"


class Transport(StrEnum):
    """What a result's ``transport`` says: ws:// and wss:// are both ``ws``."""

    TCP = "tcp"
    UDP = "udp"
    WS = "ws"


@dataclass(frozen=True)
class Target:
    scheme: Scheme
    host: str
    port: int
    path: str = "/"

    def __post_init__(self) -> None:
        # Target("tcp", ...) is still taken (tests, callers of the kit); the
        # field is the enum whatever was given, so a typo fails here.
        object.__setattr__(self, "scheme", Scheme(self.scheme))

    @property
    def transport(self) -> Transport:
        return Transport(self.scheme) if self.scheme in (Scheme.TCP, Scheme.UDP) else Transport.WS

    @property
    def has_path(self) -> bool:
        """Whether the URL carries a path (WebSocket) or only an address."""
        return self.scheme in (Scheme.WS, Scheme.WSS)

    def __str__(self) -> str:
        address = format_address(self.host, self.port)
        if not self.has_path:
            return f"{self.scheme}://{address}"
        return f"{self.scheme}://{address}{self.path}"


#: What no host name or address contains: URL delimiters and white space.
_NOT_IN_HOST = frozenset("/?#@[]\\ ")


def checked_host(host: str, bracketed: bool, text: str, what: str) -> str:
    """``host`` if it can name a host: an IPv6 address where it was in
    brackets (a zone, ``%eth0``, may follow), else free of URL delimiters."""
    if bracketed:
        try:
            ipaddress.IPv6Address(host.partition("%")[0])
        except ValueError:
            raise UsageError(f"invalid {what} {text!r}: {host!r} in brackets is not an IPv6 address") from None
    elif any(ch in _NOT_IN_HOST or not ch.isprintable() for ch in host):
        raise UsageError(f"invalid {what} {text!r}: {host!r} is not a host name or address")
    return host


def parse_hostport(text: str, what: str = "address", default_port: int | None = None) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` into (host, port); ``HOST`` or ``[V6]``
    alone take ``default_port`` when there is one."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if sep and not rest and default_port is not None:
            rest = f":{default_port}"
        if not sep or not rest.startswith(":"):
            raise UsageError(f"invalid {what} {text!r}: expected [IPV6]:PORT")
        port_text = rest[1:]
    else:
        if ":" not in text and default_port is not None:
            text = f"{text}:{default_port}"
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise UsageError(f"invalid {what} {text!r}: expected HOST:PORT")
    if not host:
        raise UsageError(f"invalid {what} {text!r}: missing host")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise UsageError(f"invalid {what} {text!r}: port must be a number from 0 to 65535")
    return checked_host(host, text.startswith("["), text, what), int(port_text)


def url_address(parts: SplitResult, text: str, what: str, unreadable: str) -> tuple[str, int | None]:
    """A split URL's checked host and its port (None if it names none);
    ``unreadable`` is the error where urllib cannot read the port."""
    try:
        port = parts.port
    except ValueError:
        raise UsageError(unreadable) from None
    host = parts.hostname
    if not host:
        raise UsageError(f"invalid {what} {text!r}: missing host")
    return checked_host(host, "[" in parts.netloc, text, what), port


def parse_target(text: str, schemes: tuple[str, ...] = ("tcp", "ws", "wss"), default: str | None = None) -> Target:
    """A target URL; ``default`` is the scheme assumed for a bare HOST:PORT."""
    if "://" not in text:
        if default is None:
            raise UsageError(f"invalid target {text!r}: expected {' or '.join(s + '://HOST:PORT' for s in schemes)}")
        host, port = parse_hostport(text, "target")
        return Target(Scheme(default), host, _target_port(port, text))
    scheme = text.partition("://")[0].lower()
    if scheme not in schemes:
        raise UsageError(f"unsupported scheme {scheme!r} in {text!r}: use {', '.join(s + '://' for s in schemes)}")
    try:
        parts = urlsplit(text)
    except ValueError:
        # urllib's own words ("Invalid IPv6 URL") name neither the target nor the fix.
        expected = f"expected {scheme}://[IPV6]:PORT, an IPv6 address in brackets"
        raise UsageError(f"invalid target {text!r}: {expected}") from None
    hostname, given_port = url_address(parts, text, "target", f"invalid port in target {text!r}")
    if parts.fragment:
        raise UsageError(f"invalid target {text!r}: a target has no #fragment")
    if parts.username is not None:
        # A Target keeps no credentials: taking them would drop them silently.
        raise UsageError(f"invalid target {text!r}: a target takes no user or password (use --header or --token)")
    if scheme in ("tcp", "udp") and (parts.path not in ("", "/") or parts.query):
        raise UsageError(f"invalid target {text!r}: a path means nothing for {scheme}:// targets")
    if given_port is not None:
        port = _target_port(given_port, text)
    elif scheme in ("tcp", "udp"):
        port = DEFAULT_TCP_PORT
    else:
        port = 443 if scheme == "wss" else 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(Scheme(scheme), hostname, port, path)


def _target_port(port: int, text: str) -> int:
    # 0 is "any port" for a listener; nothing can be reached there.
    if port == 0:
        raise UsageError(f"invalid target {text!r}: port must be a number from 1 to 65535")
    return port


def control_for(target: Target, control: str | None) -> Target | None:
    """The control connection of a ``udp://`` target: ``control`` if given, else
    ``tcp://`` on the same host and port. None for other targets."""
    if target.scheme is not Scheme.UDP:
        if control is not None:
            raise UsageError("--control is for udp:// targets only")
        return None
    return parse_target(control) if control is not None else Target(Scheme.TCP, target.host, target.port)
