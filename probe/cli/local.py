"""``natprobe local``: facts about this host that matter for idle connections."""

from __future__ import annotations

from typing import Annotated

import typer

from probe.render.console import make_console
from probe.render.facts import render_local
from probe.render.jsonout import dump
from probe.run.local import local_facts

EXAMPLES = """
Examples:

  natprobe local

  natprobe local --json | jq .keepalive_defaults
"""


def command(
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Show interfaces, the default route, whether this host is likely behind NAT, and keepalive defaults."""
    facts = local_facts()
    if json_out:
        dump(facts.to_json())
    else:
        render_local(facts, make_console())
