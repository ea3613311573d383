"""The proxy a client's connections go through: parsed, and found as curl finds it.

``--proxy URL`` takes ``http://[user:pass@]host:port`` (HTTP CONNECT),
``socks5://`` (the client resolves names) and ``socks5h://`` (the proxy
does). ``--proxy env`` reads the environment the way curl does: NO_PROXY
first, then the scheme's own variable (HTTPS_PROXY for wss:// and for raw
tcp://, whose tunnel is an HTTPS-style CONNECT; HTTP_PROXY for ws://), then
ALL_PROXY; lower-case spellings win over upper-case ones, as in curl.
A proxy is a middlebox too: what is measured through it is the path through
it, its own idle timeout included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from probe.core.targets import Scheme, Target, format_address, url_address
from probe.errors import UsageError

SCHEMES = ("http", "socks5", "socks5h")
DEFAULT_PORTS = {"http": 8080, "socks5": 1080, "socks5h": 1080}


@dataclass(frozen=True)
class Proxy:
    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        """The URL to connect with, credentials included."""
        auth = ""
        if self.username is not None:
            auth = quote(self.username, safe="")
            if self.password is not None:
                auth += ":" + quote(self.password, safe="")
            auth += "@"
        return f"{self.scheme}://{auth}{format_address(self.host, self.port)}"

    @property
    def socks_url(self) -> str:
        """``url`` as python-socks takes it: it knows socks5:// only, and is
        told separately whether the proxy resolves names (socks5h)."""
        return "socks5://" + self.url.removeprefix(self.scheme + "://") if self.scheme == "socks5h" else self.url

    @property
    def remote_dns(self) -> bool:
        """Whether the proxy resolves the target's name (socks5h, and HTTP CONNECT)."""
        return self.scheme != "socks5"

    def __str__(self) -> str:
        """The proxy as natprobe shows it: never its password."""
        user = f"{quote(self.username, safe='')}@" if self.username is not None else ""
        return f"{self.scheme}://{user}{format_address(self.host, self.port)}"


def parse_proxy(text: str) -> Proxy:
    """A proxy URL, or a UsageError saying what is wrong with it."""
    shown = _hide_password(text)
    if "://" not in text:
        raise UsageError(f"invalid proxy {shown!r}: expected http://HOST:PORT, socks5://HOST:PORT or socks5h://")
    scheme = text.partition("://")[0].lower()
    if scheme not in SCHEMES:
        raise UsageError(f"unsupported proxy scheme {scheme!r} in {shown!r}: use http://, socks5:// or socks5h://")
    unreadable = f"invalid proxy {shown!r}: its address or port cannot be read"
    try:
        parts = urlsplit(text)
    except ValueError:
        raise UsageError(unreadable) from None
    host, port = url_address(parts, shown, "proxy", unreadable)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(f"invalid proxy {shown!r}: a proxy URL has no path")
    if port == 0:
        raise UsageError(f"invalid proxy {shown!r}: port must be a number from 1 to 65535")
    username = None if parts.username is None else unquote(parts.username)
    password = None if parts.password is None else unquote(parts.password)
    return Proxy(scheme, host, port or DEFAULT_PORTS[scheme], username, password)


def _hide_password(text: str) -> str:
    head, sep, rest = text.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return text
    auth, _, address = rest.partition("@")
    user = auth.partition(":")[0]
    return f"{head}://{user}:***@{address}" if ":" in auth else text


def _get(env: Mapping[str, str], name: str) -> str | None:
    # curl: the lower-case spelling first (and only it for http_proxy, but
    # the users set HTTP_PROXY too, so both are read).
    for key in (name.lower(), name.upper()):
        value = env.get(key)
        if value:
            return value
    return None


def bypassed(host: str, no_proxy: str) -> bool:
    """Whether NO_PROXY names ``host``: ``*``, the host, or a domain it is in."""
    host = host.lower().strip("[]")
    for entry in no_proxy.split(","):
        name = entry.strip().lower()
        if not name:
            continue
        if name == "*":
            return True
        name = name.strip("[]").lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def resolve_proxy(text: str, target: Target, env: Mapping[str, str]) -> Proxy | None:
    """A ``--proxy`` (or exporter ``proxy:``) value for ``target``: a URL, or ``env``."""
    if target.scheme is Scheme.UDP:
        raise UsageError("a proxy is for tcp:// and ws(s):// targets: HTTP and SOCKS5 proxies carry no UDP probes")
    return from_env(env, target) if text == "env" else parse_proxy(text)


def from_env(env: Mapping[str, str], target: Target) -> Proxy | None:
    """The proxy the environment names for ``target``, as curl would pick it; None: direct."""
    no_proxy = _get(env, "no_proxy")
    if no_proxy and bypassed(target.host, no_proxy):
        return None
    variable = "http_proxy" if target.scheme == "ws" else "https_proxy"
    value = _get(env, variable) or _get(env, "all_proxy")
    if value is None:
        return None
    if "://" not in value:
        value = "http://" + value  # curl takes a bare host:port as an HTTP proxy
    return parse_proxy(value)
