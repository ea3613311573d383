"""The exporter's YAML: the issue's example as it is, and bad files refused with their line."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.core.exporter_config import ConfigError, ExporterConfig, JobSpec, parse_config

#: The issue's example, retargeting aside (shared with tests/test_schemas.py).
EXAMPLE = (Path(__file__).resolve().parents[1] / "data" / "exporter-example.yml").read_text()


def test_the_documented_example_parses_as_it_is() -> None:
    assert parse_config(EXAMPLE) == ExporterConfig(
        probes=(
            JobSpec("short", "tcp://probe.example.net:4040", "check", 300.0, {"idle": 120.0}),
            JobSpec("long", "tcp://probe.example.net:4040", "check", 3600.0, {"idle": 1800.0}),
            JobSpec("find", "ws://probe.example.net:8080/natprobe", "discover", 86400.0, {"max_idle": 7800.0}),
        )
    )


def test_every_option_of_the_commands_is_taken() -> None:
    config = parse_config(
        """\
concurrency: 3
jitter: 20%
start_spread: 10s
probes:
  - name: kept.alive-1
    target: wss://h/p
    token: s3cret
    headers: ["Authorization: Bearer T"]
    cacert: /etc/ca.pem
    insecure: false
    timeout: 5s
    every: 10m
    check:
      idle: 5m
      grace: 2s
      keepalive_idle: 60
      keepalive_interval: 10s
      keepalive_count: 3
      user_timeout: 30s
      heartbeat: 25s
      heartbeat_kind: message
      heartbeat_mode: idle
      heartbeat_timeout: 5s
  - name: d
    target: tcp://h
    every: 1d
    discover: {max_idle: 1h, resolution: 5s, budget: 2h, expect_min: 5m, parallel: 32, grace: 1s}
"""
    )
    assert (config.concurrency, config.jitter, config.start_spread_s) == (3, 0.2, 10.0)
    first, second = config.probes
    assert first.token == "s3cret" and first.headers == ("Authorization: Bearer T",)
    assert first.cacert == "/etc/ca.pem" and first.insecure is False and first.timeout_s == 5.0
    assert first.options == {
        "idle": 300.0, "grace": 2.0, "keepalive_idle": 60.0, "keepalive_interval": 10.0, "keepalive_count": 3,
        "user_timeout": 30.0, "heartbeat": 25.0, "heartbeat_kind": "message", "heartbeat_mode": "idle",
        "heartbeat_timeout": 5.0,
    }  # fmt: skip
    assert second.options == {
        "max_idle": 3600.0, "resolution": 5.0, "budget": 7200.0, "expect_min": 300.0, "parallel": 32, "grace": 1.0,
    }  # fmt: skip
    assert parse_config("jitter: 0.05\nprobes: [{name: a, target: tcp://h, check: {idle: 1}, every: 1}]").jitter == 0.05


BAD = [
    ("", None, "the configuration is empty: it needs a list of probes"),
    ("probes: [\n", 2, "not valid YAML"),
    ("- a\n- b\n", 1, "the configuration must be a mapping"),
    ("probe: []\n", 1, "the configuration: unknown option 'probe'"),
    ("concurrency: 2\n", 1, "the configuration has no probes"),
    ("probes: []\n", 1, "probes must be a non-empty list"),
    ("probes:\n  - target: tcp://h\n", 2, "probe 1 has no name"),
    ("probes:\n  - name: 'a b'\n", 2, "probe name 'a b': use letters, digits"),
    ("probes:\n  - name: a\n    every: 1m\n    check: {idle: 1}\n", 2, "probe 'a' has no target"),
    ("probes:\n  - name: a\n    target: tcp://h\n    check: {idle: 1}\n", 2, "probe 'a' has no every"),
    ("probes:\n  - name: a\n    target: ftp://h:1\n    every: 1m\n    check: {idle: 1}\n", 3, "unsupported scheme"),
    ("probes:\n  - name: a\n    target: tcp://h\n    every: 1m\n", 2, "needs exactly one of check, discover or survey"),
    (
        "probes:\n  - name: a\n    target: tcp://h\n    every: 1m\n    check: {idle: 1}\n    discover: {}\n",
        2,
        "needs exactly one of check, discover or survey",
    ),
    (
        "probes:\n  - name: a\n    target: tcp://h\n    every: soon\n    check: {idle: 1}\n",
        4,
        "invalid duration 'soon'",
    ),
    ("probes:\n  - name: a\n    target: tcp://h\n    every: 0\n    check: {idle: 1}\n", 4, "every must be greater"),
    ("probes:\n  - name: a\n    target: tcp://h\n    every: 1m\n    check: {}\n", 5, "check needs an idle"),
    (
        "probes:\n  - name: a\n    target: tcp://h\n    every: 1m\n    check:\n      idle: 1\n      idel: 2\n",
        7,
        "unknown option 'idel'",
    ),
    (
        "probes:\n  - name: a\n    target: tcp://h\n    every: 1m\n    check: {idle: 1, keepalive_count: 300}\n",
        5,
        "1 to 127",
    ),
    (
        "probes:\n  - name: a\n    target: tcp://h\n    every: 1m\n    check: {idle: 1, keepalive_count: x}\n",
        5,
        "whole number",
    ),
    (
        "probes:\n  - name: a\n    target: tcp://h\n    every: 1m\n    check: {idle: 1, heartbeat_kind: smoke}\n",
        5,
        "ping, message",
    ),
    (
        "probes:\n  - name: a\n    target: tcp://h\n    every: 1m\n    check: {idle: 1, heartbeat_mode: x}\n",
        5,
        "fixed, idle",
    ),
    ("probes:\n  - name: a\n    target: tcp://h\n    every: 1m\n    discover: {parallel: 2}\n", 5, "at least 3"),
    (
        "probes:\n  - name: a\n    target: udp://h\n    every: 1m\n    discover: {parallel: 7}\n",
        5,
        "discover.parallel: udp:// needs at least 8 connections at once, got 7",
    ),
    ("probes:\n  - name: a\n    target: tcp://h\n    every: 1m\n    check: [1]\n", 5, "check must be a mapping"),
    ("probes:\n  - name: a\n    target: [x]\n    every: 1m\n    check: {idle: 1}\n", 3, "must be a single value"),
    ("probes:\n  - name: a\n    target: tcp://h\n    every: 1m\n    headers: x\n    check: {idle: 1}\n", 5, "headers"),
    (
        "probes:\n  - name: a\n    target: tcp://h\n    every: 1m\n    insecure: maybe\n    check: {idle: 1}\n",
        5,
        "true or false",
    ),
    (
        "probes:\n  - {name: a, target: tcp://h, every: 1m, check: {idle: 1}}\n"
        "  - {name: a, target: tcp://h, every: 1m, check: {idle: 1}}\n",
        3,
        "probe name 'a' is used twice",
    ),
    ("probes:\n  - name: a\n    name: b\n", 3, "'name' appears twice"),
    ("concurrency: 0\nprobes: [{name: a, target: tcp://h, every: 1, check: {idle: 1}}]\n", 1, "at least 1"),
    ("jitter: 90%\nprobes: [{name: a, target: tcp://h, every: 1, check: {idle: 1}}]\n", 1, "from 0 to 50%"),
    ("jitter: lots\nprobes: [{name: a, target: tcp://h, every: 1, check: {idle: 1}}]\n", 1, "fraction or a percentage"),
]


@pytest.mark.parametrize(("text", "line", "message"), BAD)
def test_bad_configs_are_refused_with_the_line_and_the_reason(text: str, line: int | None, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert info.value.line == line
    assert message in info.value.message
    if line is not None:
        assert info.value.message.startswith(f"line {line}: ")


ONE = "probes: [{name: a, target: tcp://h, every: 1, check: {idle: 1}}]\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the configuration is empty: it needs a list of probes"),
        ("concurrency: 2\n", "line 1: the configuration has no probes"),
        ("probes: []\n", "line 1: probes must be a non-empty list"),
        ("concurrency: 0\n" + ONE, "line 1: concurrency must be at least 1"),
        ("concurrency: x\n" + ONE, "line 1: concurrency must be a whole number, not 'x'"),
        ("jitter: 51%\n" + ONE, "line 1: jitter must be from 0 to 50%"),
        ("jitter: -0.1\n" + ONE, "line 1: jitter must be from 0 to 50%"),
        ("jitter: x\n" + ONE, "line 1: jitter must be a fraction or a percentage, not 'x'"),
        (
            "start_spread: soon\n" + ONE,
            "line 1: start_spread: invalid duration 'soon': use a number with an optional "
            "unit, e.g. 500ms, 45s, 1.5m, 2h, 2h10m",
        ),
        ("probes: [\n", "line 2: not valid YAML: expected the node content, but found '<stream end>'"),
        (
            "probes:\n  - {name: a, target: tcp://h, every: 1, check: {idle: 1}, insecure: maybe}\n",
            "line 2: probe 'a': insecure must be true or false",
        ),
        (
            "probes:\n  - {name: a, target: tcp://h, every: 1, check: {idle: 1}}\n  - {name: a, target: tcp://h, "
            "every: 1, check: {idle: 1}}\n",
            "line 3: probe name 'a' is used twice",
        ),
    ],
)
def test_refusals_in_full(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert info.value.message == message


@pytest.mark.parametrize(
    ("value", "expected"), [("true", True), ("yes", True), ("True", True), ("false", False), ("no", False)]
)
def test_booleans(value: str, expected: bool) -> None:
    text = f"probes: [{{name: a, target: wss://h, every: 1, check: {{idle: 1}}, insecure: {value}}}]\n"
    assert parse_config(text).probes[0].insecure is expected


def test_limits_at_their_edges_are_accepted() -> None:
    assert parse_config("concurrency: 1\n" + ONE).concurrency == 1
    assert parse_config("jitter: 0\n" + ONE).jitter == 0.0
    assert parse_config("jitter: 50%\n" + ONE).jitter == 0.5
    assert parse_config("start_spread: 2m\n" + ONE).start_spread_s == 120.0
    assert parse_config(ONE) == ExporterConfig(
        (JobSpec("a", "tcp://h", "check", 1.0, {"idle": 1.0}),), concurrency=2, jitter=0.1, start_spread_s=5.0
    )


def test_udp_probes_take_udp_state_and_a_control_connection() -> None:
    config = parse_config(
        """\
probes:
  - name: wireguard
    target: udp://probe.example.net:4040
    check: {idle: 25s, grace: 2s, udp_state: unreplied}
    every: 10m
  - name: udp-find
    target: udp://probe.example.net
    control: wss://probe.example.net/natprobe
    discover: {max_idle: 10m}
    every: 24h
"""
    )
    check, find = config.probes
    assert check == JobSpec(
        "wireguard", "udp://probe.example.net:4040", "check", 600.0,
        {"idle": 25.0, "grace": 2.0, "udp_state": "unreplied"},
    )  # fmt: skip
    assert find.control == "wss://probe.example.net/natprobe" and find.kind == "discover"
    # The state is optional: replied, as for the command.
    plain = parse_config(udp_probe("{idle: 1}")).probes[0]
    assert plain.options == {"idle": 1.0} and plain.control is None


def udp_probe(check: str, extra: str = "") -> str:
    return f"probes:\n  - {{name: u, target: udp://h, every: 1, check: {check}{extra}}}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (udp_probe("{idle: 1, keepalive_idle: 5}"),
         "line 2: probe 'u': check.keepalive_idle is for tcp:// and ws:// targets, not udp://"),
        (udp_probe("{idle: 1, heartbeat: 5}"),
         "line 2: probe 'u': check.heartbeat is for tcp:// and ws:// targets, not udp://"),
        (udp_probe("{idle: 1, udp_state: bound}"),
         "line 2: probe 'u': check.udp_state must be one of unreplied, replied, stream"),
        ("probes:\n  - {name: t, target: tcp://h, every: 1, check: {idle: 1, udp_state: replied}}\n",
         "line 2: probe 't': check.udp_state is for udp:// targets only"),
        ("probes:\n  - {name: t, target: tcp://h, every: 1, check: {idle: 1}, control: tcp://h}\n",
         "line 2: probe 't': control is for udp:// targets only"),
        (udp_probe("{idle: 1}", ", control: [tcp://h]"),
         "line 2: probe 'u': control must be a single value"),
        (udp_probe("{idle: 1}", ", control: udp://h"),
         "line 2: probe 'u': control: unsupported scheme 'udp' in 'udp://h': use tcp://, ws://, wss://"),
    ],
)  # fmt: skip
def test_udp_refusals_name_the_option(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert info.value.message == message


def test_tcp_and_websocket_probes_take_a_proxy_and_udp_probes_do_not() -> None:
    config = parse_config(
        "probes:\n"
        "  - {name: a, target: tcp://h, every: 1m, check: {idle: 1}, proxy: 'socks5h://198.18.0.9:1080'}\n"
        "  - {name: b, target: wss://h/p, every: 1m, discover: {}, proxy: env}\n"
    )
    assert [p.proxy for p in config.probes] == ["socks5h://198.18.0.9:1080", "env"]
    for text, line, message in [
        ("probes:\n  - {name: u, target: udp://h, every: 1, check: {idle: 1}, proxy: 'http://p:1'}\n", 2,
         "probe 'u': proxy: a proxy is for tcp:// and ws(s):// targets"),
        ("probes:\n  - {name: f, target: tcp://h, every: 1, check: {idle: 1},\n     proxy: 'ftp://p:1'}\n", 3,
         "probe 'f': proxy: unsupported proxy scheme 'ftp'"),
    ]:  # fmt: skip
        with pytest.raises(ConfigError) as info:
            parse_config(text)
        assert info.value.line == line and message in str(info.value), str(info.value)


def test_a_survey_probe_takes_targets_and_discovers_options_with_a_family() -> None:
    config = parse_config(
        "probes:\n"
        "  - name: paths\n"
        "    targets: [tcp://h:4040, 'tcp://[2001:2::1]:5222', wss://h/p, udp://h]\n"
        "    survey: {max_idle: 10m, family: 4, parallel: 16}\n"
        "    every: 1h\n"
    )
    (probe,) = config.probes
    assert probe.kind == "survey" and probe.target == "tcp://h:4040"
    assert probe.targets == ("tcp://h:4040", "tcp://[2001:2::1]:5222", "wss://h/p", "udp://h")
    assert probe.options == {"max_idle": 600.0, "family": "4", "parallel": 16}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("probes:\n  - {name: s, target: tcp://h, every: 1, survey: {}}\n",
         "line 2: probe 's': survey takes targets, not target"),
        ("probes:\n  - {name: s, every: 1, survey: {}}\n", "line 2: probe 's' has no targets"),
        ("probes:\n  - {name: s, targets: [], every: 1, survey: {}}\n",
         "line 2: probe 's': targets must be a non-empty list"),
        ("probes:\n  - {name: s, targets: [tcp://h, tcp://h], every: 1, survey: {}}\n",
         "line 2: probe 's': target 'tcp://h' appears twice"),
        ("probes:\n  - {name: s, targets: [tcp://h, 'ftp://h'], every: 1, survey: {}}\n",
         "line 2: probe 's': unsupported scheme 'ftp' in 'ftp://h': use tcp://, udp://, ws://, wss://"),
        ("probes:\n  - {name: s, targets: [tcp://h], every: 1, survey: {family: 5}}\n",
         "line 2: probe 's': survey.family must be one of 4, 6, both"),
        ("probes:\n  - {name: s, targets: [tcp://h], every: 1, survey: {idle: 5}}\n",
         "line 2: probe 's': survey: unknown option 'idle' (known: budget, expect_min, family, grace, max_idle, "
         "parallel, resolution)"),
        ("probes:\n  - {name: d, targets: [tcp://h], every: 1, discover: {}}\n",
         "line 2: probe 'd': discover takes target, not targets"),
        ("probes:\n  - {name: s, targets: [udp://h], every: 1, survey: {}, control: tcp://h}\n",
         "line 2: probe 's': control is for check and discover; a survey's udp:// targets are driven over "
         "tcp:// on their own host and port"),
        ("probes:\n  - {name: s, targets: [udp://h], every: 1, survey: {}, proxy: 'http://p:1'}\n",
         "line 2: probe 's': proxy: a proxy is for tcp:// and ws(s):// targets"),
    ],
)  # fmt: skip
def test_survey_refusals_name_the_line_and_reason(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert str(info.value).startswith(message), str(info.value)


def test_the_schema_agrees_with_the_parser_on_survey_probes() -> None:
    from jsonschema import Draft202012Validator

    from probe.schemas import load

    validator = Draft202012Validator(load("exporter-config"))
    good = {"probes": [{"name": "s", "targets": ["tcp://h", "udp://h"], "every": "1h", "survey": {"family": "both"}}]}
    assert not list(validator.iter_errors(good))
    for bad in (
        {"name": "s", "target": "tcp://h", "every": 1, "survey": {}},
        {"name": "s", "targets": ["tcp://h", "tcp://h"], "every": 1, "survey": {}},
        {"name": "s", "targets": ["tcp://h"], "every": 1, "survey": {"family": 5}},
        {"name": "s", "targets": ["tcp://h"], "every": 1, "discover": {}},
    ):
        assert list(validator.iter_errors({"probes": [bad]})), bad
