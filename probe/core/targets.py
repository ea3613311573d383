"""Parse targets: ``tcp://HOST:PORT``, ``ws://HOST:PORT/PATH``, ``HOST:PORT``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from probe.errors import UsageError

#: natprobe's ports when none is given: ``tcp://HOST`` and ``server --tcp HOST``
#: mean 4040, ``server --ws HOST`` means 8080 (ws:// URLs keep HTTP's 80/443).
DEFAULT_TCP_PORT = 4040
DEFAULT_WS_PORT = 8080


@dataclass(frozen=True)
class Target:
    scheme: str  # "tcp", "udp", "ws" or "wss"
    host: str
    port: int
    path: str = "/"

    @property
    def transport(self) -> str:
        return self.scheme if self.scheme in ("tcp", "udp") else "ws"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.scheme in ("tcp", "udp"):
            return f"{self.scheme}://{host}:{self.port}"
        return f"{self.scheme}://{host}:{self.port}{self.path}"


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
    return host, int(port_text)


def parse_target(text: str, schemes: tuple[str, ...] = ("tcp", "ws", "wss"), default: str | None = None) -> Target:
    """A target URL; ``default`` is the scheme assumed for a bare HOST:PORT."""
    if "://" not in text:
        if default is None:
            raise UsageError(f"invalid target {text!r}: expected {' or '.join(s + '://HOST:PORT' for s in schemes)}")
        host, port = parse_hostport(text, "target")
        return Target(default, host, port)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise UsageError(f"unsupported scheme {scheme!r} in {text!r}: use {', '.join(s + '://' for s in schemes)}")
    try:
        given_port = parts.port
    except ValueError:
        raise UsageError(f"invalid port in target {text!r}") from None
    hostname = parts.hostname
    if not hostname:
        raise UsageError(f"invalid target {text!r}: missing host")
    if given_port is not None:
        port = given_port
    elif scheme in ("tcp", "udp"):
        port = DEFAULT_TCP_PORT
    else:
        port = 443 if scheme == "wss" else 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme, hostname, port, path)


def control_for(target: Target, control: str | None) -> Target | None:
    """The control connection of a ``udp://`` target: ``control`` if given, else
    ``tcp://`` on the same host and port. None for other targets."""
    if target.scheme != "udp":
        if control is not None:
            raise UsageError("--control is for udp:// targets only")
        return None
    return parse_target(control) if control is not None else Target("tcp", target.host, target.port)
