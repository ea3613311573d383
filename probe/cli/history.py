"""``natprobe history``: saved results per network path, and what changed."""

from __future__ import annotations

from typing import Annotated

import typer

from probe.core.history import grouped
from probe.core.model import to_json
from probe.render.console import make_console
from probe.render.history import render_history
from probe.render.jsonout import dump
from probe.run.history import load, state_file

EXAMPLES = """
Examples:

  natprobe history

  natprobe history --json | jq '.paths[] | select(.changed)'
"""


def command(
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Show saved discover and check results per path (target, public address, interface)."""
    groups = grouped(load())
    if json_out:
        dump({"schema": "natprobe.history/1", "file": str(state_file()), "paths": to_json(groups)})
    else:
        render_history(groups, str(state_file()), make_console())
