"""The ``natprobe`` command: an explicit typer app, one module per command."""

from __future__ import annotations

from typing import Annotated

import typer

from probe import __version__
from probe.cli import check, demo, discover, emulate, history, hold, lab, local, schema, server

app = typer.Typer(
    name="natprobe",
    help="Measure how long an idle connection survives on a network path, and what keeps it alive.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"natprobe {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """natprobe finds a path's NAT or middlebox idle timeout and recommends keepalive settings."""


# Examples go in each command's epilog: shown by `natprobe CMD --help`, kept
# out of the command list, which shows the docstring's first line only.
for name, module in (
    ("server", server),
    ("discover", discover),
    ("check", check),
    ("hold", hold),
    ("emulate", emulate),
    ("demo", demo),
    ("local", local),
    ("history", history),
    ("lab", lab),
    ("schema", schema),
):
    app.command(name, epilog=module.EXAMPLES)(module.command)


def main() -> None:
    app()
