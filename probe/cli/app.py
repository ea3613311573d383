"""The ``natprobe`` command: an explicit typer app, one module per command."""

from __future__ import annotations

from typing import Annotated

import typer

from probe import __version__
from probe.cli import check, demo, discover, emulate, history, hold, lab, local, server

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


app.command("server")(server.command)
app.command("discover")(discover.command)
app.command("check")(check.command)
app.command("hold")(hold.command)
app.command("emulate")(emulate.command)
app.command("demo")(demo.command)
app.command("local")(local.command)
app.command("history")(history.command)
app.command("lab")(lab.command)


def main() -> None:
    app()
