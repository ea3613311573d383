"""The exporter's YAML configuration, validated without I/O.

Text in, job specifications out; every error names the line it is about, so
a bad file is refused at start with something a person can fix. The format
(docs/ops.md) follows blackbox_exporter's modules: a list of probes, each
with a target, one kind (``check`` or ``discover``) with the same options as
the command, and how often to run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from probe.core.discovery import UDP_STATES
from probe.core.durations import DurationError, parse_duration
from probe.core.heartbeat import KINDS, MODES
from probe.core.pools import pool_for
from probe.core.proxy import resolve_proxy
from probe.core.survey import FAMILY_NAMES
from probe.core.targets import Scheme, Target, parse_target
from probe.errors import UsageError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")

#: Options per kind: name -> "duration" | "int" | "str" | "bool". The names are
#: the command's flags with underscores (``--keepalive-idle`` -> keepalive_idle).
_CHECK = {
    "idle": "duration",
    "grace": "duration",
    "keepalive_idle": "duration",
    "keepalive_interval": "duration",
    "keepalive_count": "int",
    "user_timeout": "duration",
    "heartbeat": "duration",
    "heartbeat_kind": "str",
    "heartbeat_mode": "str",
    "heartbeat_timeout": "duration",
    "udp_state": "str",
}
#: Check options that tune TCP or WebSocket, refused for udp:// targets.
_NOT_UDP = ("keepalive_idle", "keepalive_interval", "keepalive_count", "user_timeout", "heartbeat")
_DISCOVER = {
    "max_idle": "duration",
    "resolution": "duration",
    "budget": "duration",
    "expect_min": "duration",
    "parallel": "int",
    "grace": "duration",
}
#: A survey job takes discover's options, and the address families to try.
_SURVEY = {**_DISCOVER, "family": "str"}
JOB_KINDS = ("check", "discover", "survey")
_PROBE_KEYS = {
    "name", "target", "targets", "check", "discover", "survey", "every", "token", "headers", "cacert", "insecure",
    "timeout", "control", "proxy",
}  # fmt: skip
_TOP_KEYS = {"probes", "concurrency", "jitter", "start_spread"}


class ConfigError(UsageError):
    """A configuration the exporter refuses; ``line`` is 1-based, or None."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message if line is None else f"line {line}: {message}")
        self.line = line


@dataclass(frozen=True)
class JobSpec:
    name: str
    target: str
    kind: str  # "check", "discover" or "survey"
    every_s: float
    options: dict[str, Any] = field(default_factory=dict)
    token: str | None = None
    headers: tuple[str, ...] = ()
    cacert: str | None = None
    insecure: bool = False
    timeout_s: float = 10.0
    #: udp:// only: the control connection (default tcp:// on the same host and port).
    control: str | None = None
    #: tcp:// and ws(s):// only: a proxy URL, or "env" (the exporter's environment).
    proxy: str | None = None
    #: A survey's targets, in order (``target`` is then the first).
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExporterConfig:
    probes: tuple[JobSpec, ...]
    #: Probes running at once; others wait their turn.
    concurrency: int = 2
    #: Each interval is stretched or shrunk by up to this fraction at random,
    #: so probes on a fleet do not march in step.
    jitter: float = 0.1
    #: First runs are spread over this many seconds after start.
    start_spread_s: float = 5.0


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _mapping(node: yaml.Node, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """A mapping node as {key: (key node, value node)}; refuses duplicates."""
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{what} must be a mapping", _line(node))
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise ConfigError(f"{what}: keys must be plain names", _line(key))
        if key.value in out:
            raise ConfigError(f"{what}: {key.value!r} appears twice", _line(key))
        out[key.value] = (key, value)
    return out


def _scalar(node: yaml.Node, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(f"{what} must be a single value", _line(node))
    return str(node.value)


def _duration(node: yaml.Node, what: str) -> float:
    text = _scalar(node, what)
    try:
        seconds = parse_duration(text)
    except DurationError as exc:
        raise ConfigError(f"{what}: {exc}", _line(node)) from None
    if seconds <= 0:
        raise ConfigError(f"{what} must be greater than zero", _line(node))
    return seconds


def _int(node: yaml.Node, what: str) -> int:
    text = _scalar(node, what)
    if not re.fullmatch(r"\d+", text):
        raise ConfigError(f"{what} must be a whole number, not {text!r}", _line(node))
    return int(text)


def _bool(node: yaml.Node, what: str) -> bool:
    text = _scalar(node, what).lower()
    if text not in ("true", "false", "yes", "no"):
        raise ConfigError(f"{what} must be true or false", _line(node))
    return text in ("true", "yes")


def _unknown(keys: dict[str, tuple[yaml.Node, yaml.Node]], allowed: set[str] | dict[str, str], what: str) -> None:
    for name, (key, _) in keys.items():
        if name not in allowed:
            known = ", ".join(sorted(allowed))
            raise ConfigError(f"{what}: unknown option {name!r} (known: {known})", _line(key))


def _options(node: yaml.Node, kinds: dict[str, str], what: str) -> dict[str, Any]:
    keys = _mapping(node, what)
    _unknown(keys, kinds, what)
    options: dict[str, Any] = {}
    for name, (_, value) in keys.items():
        label = f"{what}.{name}"
        kind = kinds[name]
        if kind == "duration":
            options[name] = _duration(value, label)
        elif kind == "int":
            options[name] = _int(value, label)
        else:
            options[name] = _scalar(value, label)
    return options


def _probe(node: yaml.Node, index: int) -> JobSpec:
    keys = _mapping(node, f"probe {index + 1}")
    name_node = keys.get("name", (None, None))[1]
    if name_node is None:
        raise ConfigError(f"probe {index + 1} has no name", _line(node))
    name = _scalar(name_node, "name")
    if not _NAME.match(name):
        raise ConfigError(
            f"probe name {name!r}: use letters, digits, '_', '.', '-' (a Prometheus label value)", _line(name_node)
        )
    what = f"probe {name!r}"
    _unknown(keys, _PROBE_KEYS, what)
    if "every" not in keys:
        raise ConfigError(f"{what} has no every", _line(node))
    kinds = [k for k in JOB_KINDS if k in keys]
    if len(kinds) != 1:
        raise ConfigError(f"{what} needs exactly one of check, discover or survey", _line(node))
    kind = kinds[0]
    parsed = _targets(keys, what, node, kind)
    targets = tuple(text for text, _ in parsed)
    target = targets[0]
    udp = any(each.scheme is Scheme.UDP for _, each in parsed)
    control = None
    if "control" in keys:
        control_node = keys["control"][1]
        control = _scalar(control_node, f"{what}: control")
        if kind == "survey":
            raise ConfigError(
                f"{what}: control is for check and discover; a survey's udp:// targets are driven over tcp:// "
                "on their own host and port",
                _line(control_node),
            )
        if not udp:
            raise ConfigError(f"{what}: control is for udp:// targets only", _line(control_node))
        try:
            parse_target(control)
        except UsageError as exc:
            raise ConfigError(f"{what}: control: {exc.message}", _line(control_node)) from None
    proxy = None
    if "proxy" in keys:
        proxy_node = keys["proxy"][1]
        proxy = _scalar(proxy_node, f"{what}: proxy")
        try:
            for _, each in parsed:
                resolve_proxy(proxy, each, {})
        except UsageError as exc:
            raise ConfigError(f"{what}: proxy: {exc.message}", _line(proxy_node)) from None
    allowed = {"check": _CHECK, "discover": _DISCOVER, "survey": _SURVEY}[kind]
    options = _options(keys[kind][1], allowed, f"{what}: {kind}")
    if kind == "check":
        _check_options(options, what, _line(keys[kind][1]), udp)
    if "parallel" in options and options["parallel"] < 3:
        raise ConfigError(f"{what}: {kind}.parallel must be at least 3", _line(keys[kind][1]))
    try:
        for _, each in parsed:
            pool_for(each.transport, options.get("parallel"), f"{kind}.parallel")
    except UsageError as exc:
        raise ConfigError(f"{what}: {exc.message}", _line(keys[kind][1])) from None
    if options.get("family", "both") not in FAMILY_NAMES:
        raise ConfigError(f"{what}: survey.family must be one of {', '.join(FAMILY_NAMES)}", _line(keys[kind][1]))
    headers: tuple[str, ...] = ()
    if "headers" in keys:
        seq = keys["headers"][1]
        if not isinstance(seq, yaml.SequenceNode):
            raise ConfigError(f"{what}: headers must be a list of 'Name: value'", _line(seq))
        headers = tuple(_scalar(item, f"{what}: header") for item in seq.value)
    return JobSpec(
        name=name,
        target=target,
        kind=kind,
        every_s=_duration(keys["every"][1], f"{what}: every"),
        options=options,
        token=_scalar(keys["token"][1], f"{what}: token") if "token" in keys else None,
        headers=headers,
        cacert=_scalar(keys["cacert"][1], f"{what}: cacert") if "cacert" in keys else None,
        insecure=_bool(keys["insecure"][1], f"{what}: insecure") if "insecure" in keys else False,
        timeout_s=_duration(keys["timeout"][1], f"{what}: timeout") if "timeout" in keys else 10.0,
        control=control,
        proxy=proxy,
        targets=targets if kind == "survey" else (),
    )


def _targets(
    keys: dict[str, tuple[yaml.Node, yaml.Node]], what: str, node: yaml.Node, kind: str
) -> list[tuple[str, Target]]:
    """``target`` (check, discover) or ``targets`` (a survey's list): each as
    written, and parsed."""
    wanted, other = ("targets", "target") if kind == "survey" else ("target", "targets")
    if other in keys:
        raise ConfigError(f"{what}: {kind} takes {wanted}, not {other}", _line(keys[other][0]))
    if wanted not in keys:
        raise ConfigError(f"{what} has no {wanted}", _line(node))
    value = keys[wanted][1]
    if kind == "survey":
        if not isinstance(value, yaml.SequenceNode) or not value.value:
            raise ConfigError(f"{what}: targets must be a non-empty list", _line(value))
        items = list(value.value)
    else:
        items = [value]
    targets: list[tuple[str, Target]] = []
    for item in items:
        text = _scalar(item, f"{what}: target")
        try:
            parsed = parse_target(text, ("tcp", "udp", "ws", "wss"))
        except UsageError as exc:
            raise ConfigError(f"{what}: {exc.message}", _line(item)) from None
        if any(text == seen for seen, _ in targets):
            # Its metrics would carry the same labels twice.
            raise ConfigError(f"{what}: target {text!r} appears twice", _line(item))
        targets.append((text, parsed))
    return targets


def _check_options(options: dict[str, Any], what: str, line: int, udp: bool) -> None:
    if "idle" not in options:
        raise ConfigError(f"{what}: check needs an idle", line)
    if udp:
        tcp_only = [name for name in _NOT_UDP if name in options]
        if tcp_only:
            raise ConfigError(f"{what}: check.{tcp_only[0]} is for tcp:// and ws:// targets, not udp://", line)
        if options.get("udp_state", "replied") not in UDP_STATES:
            raise ConfigError(f"{what}: check.udp_state must be one of {', '.join(UDP_STATES)}", line)
    elif "udp_state" in options:
        raise ConfigError(f"{what}: check.udp_state is for udp:// targets only", line)
    if options.get("heartbeat_kind", "ping") not in KINDS:
        raise ConfigError(f"{what}: check.heartbeat_kind must be one of {', '.join(KINDS)}", line)
    if options.get("heartbeat_mode", "fixed") not in MODES:
        raise ConfigError(f"{what}: check.heartbeat_mode must be one of {', '.join(MODES)}", line)
    count = options.get("keepalive_count")
    if count is not None and not 1 <= count <= 127:
        raise ConfigError(f"{what}: check.keepalive_count must be from 1 to 127", line)


def parse_config(text: str) -> ExporterConfig:
    """Validate a configuration; raise ConfigError naming the line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else int(mark.line) + 1
        raise ConfigError(f"not valid YAML: {exc.problem or exc.context}", line) from None
    if root is None:
        raise ConfigError("the configuration is empty: it needs a list of probes")
    keys = _mapping(root, "the configuration")
    _unknown(keys, _TOP_KEYS, "the configuration")
    if "probes" not in keys:
        raise ConfigError("the configuration has no probes", _line(root))
    seq = keys["probes"][1]
    if not isinstance(seq, yaml.SequenceNode) or not seq.value:
        raise ConfigError("probes must be a non-empty list", _line(seq))
    probes = tuple(_probe(item, index) for index, item in enumerate(seq.value))
    seen: dict[str, int] = {}
    for index, spec in enumerate(probes):
        if spec.name in seen:
            raise ConfigError(f"probe name {spec.name!r} is used twice", _line(seq.value[index]))
        seen[spec.name] = index
    config = ExporterConfig(probes)
    if "concurrency" in keys:
        concurrency = _int(keys["concurrency"][1], "concurrency")
        if concurrency < 1:
            raise ConfigError("concurrency must be at least 1", _line(keys["concurrency"][1]))
        config = _replace(config, concurrency=concurrency)
    if "jitter" in keys:
        node = keys["jitter"][1]
        text_value = _scalar(node, "jitter")
        try:
            jitter = float(text_value.rstrip("%")) / (100 if text_value.endswith("%") else 1)
        except ValueError:
            raise ConfigError(f"jitter must be a fraction or a percentage, not {text_value!r}", _line(node)) from None
        if not 0 <= jitter <= 0.5:
            raise ConfigError("jitter must be from 0 to 50%", _line(node))
        config = _replace(config, jitter=jitter)
    if "start_spread" in keys:
        config = _replace(config, start_spread_s=_duration(keys["start_spread"][1], "start_spread"))
    return config


def _replace(config: ExporterConfig, **changes: Any) -> ExporterConfig:
    from dataclasses import replace

    return replace(config, **changes)
