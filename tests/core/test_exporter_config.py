"""The exporter's YAML: the issue's example as it is, and bad files refused with their line."""

from __future__ import annotations

import pytest

from probe.core.exporter_config import ConfigError, ExporterConfig, JobSpec, parse_config

EXAMPLE = """\
probes:
  - name: short
    target: tcp://probe.example.net:4040
    check: {idle: 2m}
    every: 5m
  - name: long
    target: tcp://probe.example.net:4040
    check: {idle: 30m}
    every: 1h
  - name: find
    target: ws://probe.example.net:8080/natprobe
    discover: {max_idle: 2h10m}
    every: 24h
"""


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
    ("probes:\n  - name: a\n    target: udp://h:1\n    every: 1m\n    check: {idle: 1}\n", 3, "unsupported scheme"),
    ("probes:\n  - name: a\n    target: tcp://h\n    every: 1m\n", 2, "needs exactly one of check or discover"),
    (
        "probes:\n  - name: a\n    target: tcp://h\n    every: 1m\n    check: {idle: 1}\n    discover: {}\n",
        2,
        "needs exactly one of check or discover",
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
