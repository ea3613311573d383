"""Help says what each option takes (DURATION, N, HOST:PORT, FILE...), not its Python type."""

from __future__ import annotations

import re

import typer

from probe.cli import metavars
from probe.cli.app import app
from tests.conftest import run_cli


def test_every_parameter_of_every_command_has_a_metavar_or_its_choices() -> None:
    command = metavars.label(typer.main.get_command(app))
    unlabelled = [
        (name, param.name)
        for name, param in metavars.parameters(command)
        if param.metavar is None and not metavars.is_choice(param)
    ]
    assert unlabelled == []
    flags = {param.name for _, param in metavars.parameters(command) if param.metavar == ""}
    assert {"json_out", "quiet", "no_save", "version"} <= flags


def test_help_shows_the_metavars() -> None:
    shown = run_cli("check", "--help", env={"COLUMNS": "160"}).stdout
    for option, metavar in [
        ("--idle", "DURATION"), ("--keepalive-count", "N"), ("--control", "URL"), ("--cacert", "FILE"),
        ("--textfile", "FILE"), ("--token", "SECRET"), ("--json", ""),
    ]:  # fmt: skip
        assert re.search(rf"{re.escape(option)}\s+{re.escape(metavar)}\s", shown), option
    # No option says its Python type; typer's own --help may (typer 0.2x does).
    options = [line for line in shown[shown.index("Options") :].splitlines() if "--help" not in line]
    assert [line for line in options if re.search(r"<(?:str|int|bool|float|list\[str\])>", line)] == []
    server = run_cli("server", "--help", env={"COLUMNS": "160"}).stdout
    assert re.search(r"--tcp\s+HOST:PORT\s", server) and re.search(r"--max-per-ip\s+N\s", server)
