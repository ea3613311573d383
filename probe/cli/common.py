"""Helpers shared by the commands: parsing, running, exit codes."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import Any, NoReturn, TypeVar

import typer

from probe.core import nagios
from probe.core.durations import DurationError, parse_duration
from probe.core.heartbeat import HeartbeatConfig
from probe.core.keepalive import KeepaliveSettings
from probe.core.planner import PlannerConfig
from probe.core.pools import pool_for
from probe.core.proxy import Proxy, resolve_proxy
from probe.core.targets import Target, parse_target
from probe.core.text import printable
from probe.errors import ExitCode, NatprobeError, UsageError
from probe.net.dial import Endpoint
from probe.net.ws_client import WsOptions, parse_header

T = TypeVar("T")


#: Set by --nagios: errors become plugin lines and plugin exit codes.
NAGIOS: ContextVar[bool] = ContextVar("nagios", default=False)


def fail(message: str, code: int) -> NoReturn:
    # One line, no traceback: scripts grep it, people read it.
    first = message.strip().splitlines()[0] if message.strip() else "error"
    if NAGIOS.get():
        # The monitoring-plugins guidelines: a refused or unreachable target
        # is CRITICAL; usage and internal errors are UNKNOWN.
        status, line = nagios.for_error(first, usage=code != ExitCode.UNREACHABLE)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        raise typer.Exit(int(status))
    sys.stderr.write(f"natprobe: {printable(first, 500)}\n")
    sys.stderr.flush()
    raise typer.Exit(code)


def duration(value: str | None, flag: str, positive: bool = True) -> float | None:
    if value is None:
        return None
    try:
        seconds = parse_duration(value)
    except DurationError as exc:
        fail(f"{flag}: {exc}", ExitCode.USAGE)
    if positive and seconds <= 0:
        fail(f"{flag}: must be greater than zero", ExitCode.USAGE)
    return seconds


def planner_config(max_idle: str, resolution: str | None, budget: str | None, expect_min: str | None) -> PlannerConfig:
    """A discovery's planner from the options discover and survey share
    (--parallel sets its pool once the transport is known: run/jobs.py)."""
    return PlannerConfig(
        max_idle_s=duration(max_idle, "--max-idle") or 0.0,
        resolution_s=duration(resolution, "--resolution"),
        budget_s=duration(budget, "--budget"),
        expect_min_s=duration(expect_min, "--expect-min"),
    )


def discovered_targets(texts: list[str], parallel: int | None, json_out: bool, ndjson: bool) -> list[Target]:
    """The targets a discovery (discover, survey) measures, checked with its
    outputs and pool before anything runs: a usage error names what is wrong."""
    if json_out and ndjson:
        fail("--json and --ndjson cannot be combined", ExitCode.USAGE)
    try:
        parsed = [parse_target(text, ("tcp", "udp", "ws", "wss")) for text in texts]
        for each in parsed:
            pool_for(each.transport, parallel)
    except UsageError as exc:
        fail(exc.message, ExitCode.USAGE)
    return parsed


def keepalive(
    idle: str | None, interval: str | None, count: int | None, user_timeout: str | None = None
) -> KeepaliveSettings:
    return KeepaliveSettings(
        idle_s=duration(idle, "--keepalive-idle"),
        interval_s=duration(interval, "--keepalive-interval"),
        count=count,
        user_timeout_s=duration(user_timeout, "--user-timeout"),
    )


def ws_options(headers: list[str] | None, subprotocol: str | None, cacert: str | None, insecure: bool) -> WsOptions:
    try:
        parsed = [parse_header(h) for h in headers or []]
    except UsageError as exc:
        fail(exc.message, ExitCode.USAGE)
    return WsOptions(headers=parsed, subprotocol=subprotocol, cacert=cacert, insecure=insecure)


def endpoint(
    target: Target,
    token: str | None = None,
    headers: list[str] | None = None,
    subprotocol: str | None = None,
    cacert: str | None = None,
    insecure: bool = False,
    proxy: str | None = None,
) -> Endpoint:
    """What the options say about reaching ``target``: the one Endpoint of a command."""
    return Endpoint(
        target, token=token, ws=ws_options(headers, subprotocol, cacert, insecure), proxy=proxy_for(proxy, target)
    )


def proxy_for(text: str | None, target: Target) -> Proxy | None:
    """``--proxy``: a URL, or ``env`` for the one the environment names for ``target``."""
    if text is None:
        return None
    try:
        return resolve_proxy(text, target, os.environ)
    except UsageError as exc:
        fail(exc.message, ExitCode.USAGE)


def heartbeat(interval: str | None, kind: str, mode: str, timeout: str | None) -> HeartbeatConfig | None:
    seconds = duration(interval, "--heartbeat")
    if seconds is None:
        return None
    try:
        return HeartbeatConfig(seconds, kind=kind, mode=mode, timeout_s=duration(timeout, "--heartbeat-timeout"))
    except ValueError as exc:
        fail(str(exc), ExitCode.USAGE)


def run(coro: Coroutine[Any, Any, T], on_error: Callable[[NatprobeError], None] | None = None) -> T:
    """Run a coroutine; map natprobe errors and Ctrl-C to exit codes.

    ``on_error`` sees a natprobe error first (to record it in a textfile).
    """
    try:
        return asyncio.run(coro)
    except NatprobeError as exc:
        if on_error is not None:
            on_error(exc)
        fail(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", ExitCode.INTERRUPTED)
