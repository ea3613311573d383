"""``natprobe schema``: print the JSON Schema of a command's ``--json`` output."""

from __future__ import annotations

from typing import Annotated

import typer

from probe.cli.common import fail
from probe.errors import ExitCode, UsageError
from probe.render.jsonout import dump
from probe.schemas import NAMES, load, schema_id

EXAMPLES = """
Examples:

  natprobe schema discover > natprobe.discover.schema.json

  natprobe schema natprobe.check/1

  natprobe schema            # list the schemas
"""


def command(
    name: Annotated[
        str | None, typer.Argument(help=f"One of {', '.join(NAMES)} (or its full id, e.g. natprobe.discover/1).")
    ] = None,
) -> None:
    """Print the JSON Schema (draft 2020-12) of a command's --json output."""
    if name is None:
        for short in NAMES:
            typer.echo(f"{short:10} {schema_id(short)}")
        return
    try:
        schema = load(name)
    except UsageError as exc:
        fail(exc.message, ExitCode.USAGE)
    dump(schema)
