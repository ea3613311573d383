"""``natprobe exporter``: probes on schedules, results on /metrics for Prometheus."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from probe.cli.common import fail, run
from probe.core.exporter_config import ConfigError, parse_config
from probe.core.targets import parse_hostport
from probe.errors import ExitCode, UsageError
from probe.run.exporter import Exporter

#: Where the exporter listens unless told otherwise.
DEFAULT_LISTEN = "0.0.0.0:9741"

EXAMPLES = """
Examples:

  natprobe exporter --config /etc/natprobe/exporter.yml

  natprobe exporter --config exporter.yml --listen 127.0.0.1:9741

A configuration (docs/ops.md has the full list of options):

  probes:
    - name: short
      target: tcp://probe.example.net:4040
      check: {idle: 2m}
      every: 5m
"""


def command(
    config: Annotated[str, typer.Option("--config", help="The YAML file listing the probes.")],
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT to serve /metrics and /healthz on.")
    ] = DEFAULT_LISTEN,
) -> None:
    """Run probes on their schedules and serve their last results on /metrics for Prometheus."""
    path = Path(config)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read --config {config!r}: {getattr(exc, 'strerror', None) or exc}", ExitCode.USAGE)
    try:
        parsed = parse_config(text)
        host, port = parse_hostport(listen, "--listen address", 9741)
    except ConfigError as exc:
        fail(f"{config}: {exc.message}", ExitCode.USAGE)
    except UsageError as exc:
        fail(exc.message, ExitCode.USAGE)
    logging.basicConfig(level=logging.WARNING, format="natprobe exporter: %(message)s", stream=sys.stderr)

    def announce(line: str) -> None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    run(Exporter(parsed).serve(host, port, announce))
