"""Target and address parsing, with natprobe's default ports."""

from __future__ import annotations

import pytest

from probe.core.targets import (
    DEFAULT_TCP_PORT,
    Target,
    control_for,
    format_address,
    parse_hostport,
    parse_target,
    url_host,
)
from probe.errors import UsageError


def test_tcp_targets_without_a_port_use_natprobes_port() -> None:
    assert DEFAULT_TCP_PORT == 4040
    assert parse_target("tcp://probe.example.net") == Target("tcp", "probe.example.net", 4040)
    assert parse_target("tcp://[2001:db8::1]") == Target("tcp", "2001:db8::1", 4040)
    assert str(parse_target("tcp://h")) == "tcp://h:4040"


def test_websocket_targets_keep_the_url_default_ports() -> None:
    assert parse_target("ws://h/natprobe") == Target("ws", "h", 80, "/natprobe")
    assert parse_target("wss://h") == Target("wss", "h", 443, "/")
    assert parse_target("wss://h:8443/p?x=1").path == "/p?x=1"


def test_a_given_port_wins_over_the_default() -> None:
    assert parse_hostport("h:5", "--tcp address", 4040) == ("h", 5)
    with pytest.raises(UsageError) as info:
        parse_hostport("0.0.0.0")
    assert info.value.message == "invalid address '0.0.0.0': expected HOST:PORT"


def test_server_addresses_take_a_default_port_only_when_given_one() -> None:
    assert parse_hostport("0.0.0.0", "--tcp address", 4040) == ("0.0.0.0", 4040)
    assert parse_hostport("[::]", "--tcp address", 4040) == ("::", 4040)
    assert parse_hostport("[::]:5", "--tcp address", 4040) == ("::", 5)
    with pytest.raises(UsageError, match="expected HOST:PORT"):
        parse_hostport("0.0.0.0")
    with pytest.raises(UsageError, match=r"expected \[IPV6\]:PORT"):
        parse_hostport("[::]")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http://h:1", "unsupported scheme"),
        ("tcp://h:70000", "invalid port"),
        ("tcp://:5", "missing host"),
        ("h", "expected tcp://HOST:PORT"),
    ],
)
def test_bad_targets_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_target(text)


def test_a_bare_host_and_port_takes_the_default_scheme() -> None:
    assert parse_target("db.internal:5432", default="tcp") == Target("tcp", "db.internal", 5432)
    with pytest.raises(UsageError, match="port must be a number"):
        parse_target("db.internal:x", default="tcp")


def test_ports_zero_and_65535_are_valid_65536_is_not() -> None:
    assert parse_hostport("h:0") == ("h", 0)
    assert parse_hostport("h:65535") == ("h", 65535)
    with pytest.raises(UsageError) as info:
        parse_hostport("h:65536", "--tcp address")
    assert info.value.message == "invalid --tcp address 'h:65536': port must be a number from 0 to 65535"


def test_address_errors_in_full() -> None:
    cases = {
        ":5": "invalid target ':5': missing host",
        "[::1]x": "invalid target '[::1]x': expected [IPV6]:PORT",
        "a:b:5": "invalid target 'a:b:5': expected HOST:PORT",
        "[::1]]:5": "invalid target '[::1]]:5': expected [IPV6]:PORT",
    }
    for text, message in cases.items():
        with pytest.raises(UsageError) as info:
            parse_target(text, default="tcp")
        assert info.value.message == message
    with pytest.raises(UsageError) as info:
        parse_target("nothing")
    assert info.value.message == (
        "invalid target 'nothing': expected tcp://HOST:PORT or ws://HOST:PORT or wss://HOST:PORT"
    )
    with pytest.raises(UsageError) as info:
        parse_target("udp://h:1")
    assert info.value.message == "unsupported scheme 'udp' in 'udp://h:1': use tcp://, ws://, wss://"


def test_targets_print_ipv6_hosts_in_brackets() -> None:
    assert str(Target("tcp", "::1", 4040)) == "tcp://[::1]:4040"
    assert str(Target("ws", "::1", 80, "/p")) == "ws://[::1]:80/p"
    assert str(Target("wss", "h", 443)) == "wss://h:443/"
    assert parse_target("tcp://h:5") == Target("tcp", "h", 5)
    assert parse_target("[::1]:5", default="tcp") == Target("tcp", "::1", 5)


def test_udp_targets_take_natprobes_port_and_print_as_udp() -> None:
    udp = parse_target("udp://h", ("tcp", "udp"))
    assert udp == Target("udp", "h", 4040) and udp.transport == "udp"
    assert str(udp) == "udp://h:4040"
    assert str(parse_target("udp://[2001:db8::1]:5000", ("udp",))) == "udp://[2001:db8::1]:5000"
    with pytest.raises(UsageError, match="unsupported scheme 'udp'"):
        parse_target("udp://h")  # only where a command takes UDP


def test_a_udp_targets_control_is_tcp_on_the_same_host_and_port_unless_given() -> None:
    udp = Target("udp", "h", 5000)
    assert control_for(udp, None) == Target("tcp", "h", 5000)
    assert control_for(udp, "wss://c/natprobe") == Target("wss", "c", 443, "/natprobe")
    assert control_for(Target("tcp", "h", 1), None) is None
    with pytest.raises(UsageError, match=r"^--control is for udp:// targets only$"):
        control_for(Target("ws", "h", 80), "tcp://c")
    with pytest.raises(UsageError, match="unsupported scheme 'udp'"):
        control_for(udp, "udp://c")


def test_malformed_targets_are_usage_errors_in_full() -> None:
    # Each of these was a traceback (urllib's ValueError) or accepted silently.
    cases = {
        "tcp://[::1": "invalid target 'tcp://[::1': expected tcp://[IPV6]:PORT, an IPv6 address in brackets",
        "ws://[::1": "invalid target 'ws://[::1': expected ws://[IPV6]:PORT, an IPv6 address in brackets",
        "tcp://[zz]:4040": "invalid target 'tcp://[zz]:4040': expected tcp://[IPV6]:PORT, an IPv6 address in brackets",
        "tcp://h:4040/path": "invalid target 'tcp://h:4040/path': a path means nothing for tcp:// targets",
        "udp://h:1?x=1": "invalid target 'udp://h:1?x=1': a path means nothing for udp:// targets",
        "tcp://h:0": "invalid target 'tcp://h:0': port must be a number from 1 to 65535",
        "h:0": "invalid target 'h:0': port must be a number from 1 to 65535",
        "ws://u:p@h/x": "invalid target 'ws://u:p@h/x': a target takes no user or password (use --header or --token)",
        "tcp://u@h": "invalid target 'tcp://u@h': a target takes no user or password (use --header or --token)",
        "ws://h/p#x": "invalid target 'ws://h/p#x': a target has no #fragment",
        "tcp://a b:1": "invalid target 'tcp://a b:1': 'a b' is not a host name or address",
        "a\\b:5": "invalid target 'a\\\\b:5': 'a\\\\b' is not a host name or address",
        "a\tb:5": "invalid target 'a\\tb:5': 'a\\tb' is not a host name or address",
        "[zz]:5": "invalid target '[zz]:5': 'zz' in brackets is not an IPv6 address",
    }
    for text, message in cases.items():
        with pytest.raises(UsageError) as info:
            parse_target(text, ("tcp", "udp", "ws", "wss"), default="tcp")
        assert info.value.message == message, text


def test_well_formed_edges_still_parse() -> None:
    assert parse_target("tcp://h/") == Target("tcp", "h", 4040)
    assert parse_target("tcp://[fe80::1%eth0]:5") == Target("tcp", "fe80::1%eth0", 5)
    assert parse_target("tcp://h:1") == Target("tcp", "h", 1)
    assert parse_target("h:65535", default="tcp") == Target("tcp", "h", 65535)
    assert parse_hostport("[fe80::1%eth0]:5") == ("fe80::1%eth0", 5)
    assert parse_hostport("[::]:0", "--tcp address") == ("::", 0)
    with pytest.raises(UsageError) as info:
        parse_hostport("[1.2.3.4]:5", "--ws address")
    assert info.value.message == "invalid --ws address '[1.2.3.4]:5': '1.2.3.4' in brackets is not an IPv6 address"
    with pytest.raises(UsageError) as info:
        parse_hostport("a/b:5", "--listen address")
    assert info.value.message == "invalid --listen address 'a/b:5': 'a/b' is not a host name or address"


def test_one_way_to_write_an_address() -> None:
    assert format_address("198.18.0.1", 7) == "198.18.0.1:7"
    assert format_address("::1", 4040) == "[::1]:4040"
    assert url_host("fe80::1%eth0") == "[fe80::1%eth0]" and url_host("h") == "h"


def test_a_scheme_is_an_enum_that_still_reads_as_its_word() -> None:
    import json

    from probe.core.targets import Scheme, Transport

    target = parse_target("wss://h/p")
    assert target.scheme is Scheme.WSS and target.transport is Transport.WS
    assert Target("tcp", "h", 1).scheme is Scheme.TCP  # a word is taken, and becomes the enum
    assert json.dumps({"transport": Target("udp", "h", 1).transport}) == '{"transport": "udp"}'
    assert str(Target(Scheme.WS, "::1", 80, "/x")) == "ws://[::1]:80/x"
    with pytest.raises(ValueError, match="'gopher' is not a valid Scheme"):
        Target("gopher", "h", 1)  # type: ignore[arg-type]
