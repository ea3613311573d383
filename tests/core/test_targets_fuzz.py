"""Every target and address parser, fed arbitrary text: a Target or a UsageError, nothing else."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from probe.core.proxy import parse_proxy
from probe.core.targets import Target, control_for, parse_hostport, parse_target
from probe.errors import UsageError

SCHEMES = ("tcp", "udp", "ws", "wss")

# Arbitrary text, and text shaped like targets so that the deep branches are reached too.
PIECES = st.sampled_from(
    ["tcp://", "udp://", "ws://", "wss://", "[", "]", ":", "::1", "/", "?", "#", "@", "%", "h", "0"]
)
TEXT = st.one_of(st.text(max_size=40), st.lists(st.one_of(PIECES, st.text(max_size=4)), max_size=8).map("".join))


def well_formed(target: Target) -> None:
    assert target.scheme in SCHEMES and target.host and 1 <= target.port <= 65535
    # What natprobe prints of a target parses back to the same target.
    assert parse_target(str(target), SCHEMES) == target


@settings(max_examples=400, deadline=None)
@given(TEXT)
@example("tcp://[::1")
@example("ws://[::1")
@example("tcp://[zz]:4040")
@example("tcp://h:4040/path")
def test_target_parsers_return_a_target_or_a_usage_error(text: str) -> None:
    for default in (None, "tcp"):
        try:
            target = parse_target(text, SCHEMES, default=default)
        except UsageError as exc:
            assert exc.message and "\n" not in exc.message
        else:
            well_formed(target)
    try:
        control = control_for(Target("udp", "h", 1), text)
    except UsageError:
        pass
    else:
        assert control is not None and control.scheme != "udp"


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_address_parser_returns_host_and_port_or_a_usage_error(text: str) -> None:
    for default_port in (None, 4040):
        try:
            host, port = parse_hostport(text, "--tcp address", default_port)
        except UsageError as exc:
            assert exc.message.startswith("invalid --tcp address ") and "\n" not in exc.message
        else:
            assert host and 0 <= port <= 65535


@settings(max_examples=400, deadline=None)
@given(TEXT)
@example("http://[::1")
@example("socks5h://u:secret@h:0")
def test_the_proxy_parser_returns_a_proxy_or_a_usage_error_that_hides_the_password(text: str) -> None:
    try:
        proxy = parse_proxy(text)
    except UsageError as exc:
        assert exc.message and "\n" not in exc.message
        if "secret@" in text:
            assert "secret" not in exc.message
    else:
        assert proxy.scheme in ("http", "socks5", "socks5h") and proxy.host and 1 <= proxy.port <= 65535
        assert parse_proxy(proxy.url) == proxy
        # As shown, the user part carries no password: nothing after a colon before the @.
        shown = str(proxy).split("://", 1)[1]
        assert "@" not in shown or ":" not in shown.rsplit("@", 1)[0]
