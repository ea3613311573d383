"""Proxy URLs, and the proxy the environment names for a target, as curl picks it."""

from __future__ import annotations

import pytest

from probe.core.proxy import Proxy, bypassed, from_env, parse_proxy
from probe.core.targets import Target
from probe.errors import UsageError

TCP = Target("tcp", "server.example.net", 4040)
WS = Target("ws", "server.example.net", 80, "/natprobe")
WSS = Target("wss", "server.example.net", 443, "/natprobe")


def test_urls_with_and_without_credentials_and_default_ports() -> None:
    assert parse_proxy("http://127.0.0.1:3128") == Proxy("http", "127.0.0.1", 3128)
    assert parse_proxy("socks5h://[::1]") == Proxy("socks5h", "::1", 1080)
    assert parse_proxy("socks5://h") == Proxy("socks5", "h", 1080)
    assert parse_proxy("HTTP://h") == Proxy("http", "h", 8080)
    p = parse_proxy("http://a%40b:p%3Ass@h:1/")
    assert (p.username, p.password) == ("a@b", "p:ss")
    assert p.url == "http://a%40b:p%3Ass@h:1" and str(p) == "http://a%40b@h:1"
    assert parse_proxy("socks5://u@[::1]:9").url == "socks5://u@[::1]:9"
    assert str(parse_proxy("socks5://[::1]:9")) == "socks5://[::1]:9"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("h:1", "invalid proxy 'h:1': expected http://HOST:PORT, socks5://HOST:PORT or socks5h://"),
        ("ftp://h:1", "unsupported proxy scheme 'ftp' in 'ftp://h:1': use http://, socks5:// or socks5h://"),
        ("http://[::1", "invalid proxy 'http://[::1': its address or port cannot be read"),
        ("http://h:x", "invalid proxy 'http://h:x': its address or port cannot be read"),
        ("http://:1", "invalid proxy 'http://:1': missing host"),
        ("http://h:1/x", "invalid proxy 'http://h:1/x': a proxy URL has no path"),
        ("http://h:1?a", "invalid proxy 'http://h:1?a': a proxy URL has no path"),
        ("http://h:0", "invalid proxy 'http://h:0': port must be a number from 1 to 65535"),
        ("http://u:secret@h:0", "invalid proxy 'http://u:***@h:0': port must be a number from 1 to 65535"),
        ("gopher://u:secret@h", "unsupported proxy scheme 'gopher' in 'gopher://u:***@h': use http://, socks5:// or socks5h://"),
    ],
)  # fmt: skip
def test_bad_proxy_urls_say_what_is_wrong_and_never_show_the_password(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_proxy(text)
    assert info.value.message == message


def test_the_environment_as_curl_reads_it() -> None:
    env = {"HTTPS_PROXY": "http://s:1", "HTTP_PROXY": "http://p:2", "ALL_PROXY": "socks5h://a:3"}
    assert from_env(env, WSS) == Proxy("http", "s", 1)
    assert from_env(env, TCP) == Proxy("http", "s", 1)  # a raw tunnel is an HTTPS-style CONNECT
    assert from_env(env, WS) == Proxy("http", "p", 2)
    assert from_env({"ALL_PROXY": "socks5h://a:3"}, WS) == Proxy("socks5h", "a", 3)
    assert from_env({"all_proxy": "socks5://a:4", "ALL_PROXY": "socks5://b:5"}, TCP) == Proxy("socks5", "a", 4)
    assert from_env({"https_proxy": "s:6"}, TCP) == Proxy("http", "s", 6)  # bare HOST:PORT is HTTP
    assert from_env({"https_proxy": "", "HTTPS_PROXY": "http://x:7"}, TCP) == Proxy("http", "x", 7)
    assert from_env({}, TCP) is None
    assert from_env({"HTTP_PROXY": "http://p:2"}, TCP) is None
    with pytest.raises(UsageError, match="unsupported proxy scheme 'ftp'"):
        from_env({"HTTPS_PROXY": "ftp://x:1"}, TCP)


def test_no_proxy_names_hosts_domains_or_everything() -> None:
    env = {"HTTPS_PROXY": "http://s:1", "NO_PROXY": "localhost, .example.net"}
    assert from_env(env, TCP) is None
    assert from_env(env, Target("tcp", "other.org", 1)) == Proxy("http", "s", 1)
    assert from_env({"HTTPS_PROXY": "http://s:1", "no_proxy": "*"}, TCP) is None
    assert bypassed("server.example.net", "example.net")
    assert bypassed("Example.NET", "example.net")
    assert not bypassed("badexample.net", "example.net")
    assert bypassed("::1", "[::1]") and bypassed("::1", "::1")
    assert not bypassed("h", " , ")


def test_a_proxy_host_is_checked_as_a_targets_is() -> None:
    with pytest.raises(UsageError) as info:
        parse_proxy("http://a b:1")
    assert info.value.message == "invalid proxy 'http://a b:1': 'a b' is not a host name or address"
    with pytest.raises(UsageError) as info:
        parse_proxy("socks5://u:secret@a\\b:1")
    assert info.value.message == "invalid proxy 'socks5://u:***@a\\\\b:1': 'a\\\\b' is not a host name or address"


def test_python_socks_gets_socks5_with_remote_dns_for_socks5h() -> None:
    # python-socks has no socks5h:// scheme: a tcp:// target through one
    # raised its ValueError as a traceback until this was mapped.
    proxy = parse_proxy("socks5h://u:p%40ss@127.0.0.1:1080")
    assert proxy.socks_url == "socks5://u:p%40ss@127.0.0.1:1080" and proxy.remote_dns is True
    plain = parse_proxy("socks5://127.0.0.1:1080")
    assert plain.socks_url == plain.url and plain.remote_dns is False
    assert parse_proxy("http://127.0.0.1:3128").socks_url == "http://127.0.0.1:3128"
