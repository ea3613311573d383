"""The ``natprobe`` command: an explicit typer app, one module per command."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from probe import __version__
from probe.cli import (
    check,
    demo,
    discover,
    emulate,
    exporter,
    history,
    hold,
    lab,
    local,
    locate,
    metavars,
    schema,
    server,
    survey,
)
from probe.core.nagios import Status
from probe.core.nagios import line as nagios_line
from probe.core.text import printable
from probe.errors import ExitCode

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
    ("exporter", exporter),
    ("locate", locate),
    ("survey", survey),
):
    app.command(name, epilog=module.EXAMPLES)(module.command)


def _usage_error(exc: BaseException) -> bool:
    # click's UsageError (vendored by typer 0.2x, click's own before): its
    # documented interface, exit code 2 and format_message(), rather than a
    # private import path that moves between typer releases.
    return getattr(exc, "exit_code", None) == ExitCode.USAGE and callable(getattr(exc, "format_message", None))


def main() -> None:
    """Run the app; a usage error is one line on stderr and exit 2, like every
    other error natprobe reports (click would print a multi-line box)."""
    try:
        # typer.main.get_command is what app() runs; labelled first (metavars.py).
        code = metavars.label(typer.main.get_command(app))(standalone_mode=False)
    except typer.Abort:
        sys.stderr.write("natprobe: interrupted\n")
        sys.exit(ExitCode.INTERRUPTED)
    except Exception as exc:
        if not _usage_error(exc):
            raise
        message = str(exc.format_message())  # type: ignore[attr-defined]
        if "--nagios" in sys.argv[1:]:
            sys.stdout.write(nagios_line(Status.UNKNOWN, f"usage: {message}") + "\n")
            sys.exit(Status.UNKNOWN)
        ctx = getattr(exc, "ctx", None)
        command = f" {ctx.info_name}" if ctx is not None and ctx.parent is not None else ""
        sys.stderr.write(f"natprobe{command}: {printable(message, 500)} (see --help)\n")
        sys.exit(ExitCode.USAGE)
    sys.exit(code if isinstance(code, int) else 0)
