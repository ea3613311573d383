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
    # No parameter says its Python type, typer's own --help included.
    assert re.search(r"--help\s+-h\s+Show", shown)
    assert re.findall(r"<(?:str|int|bool|float|list\[str\])>", shown) == []
    server = run_cli("server", "--help", env={"COLUMNS": "160"}).stdout
    assert re.search(r"--tcp\s+HOST:PORT\s", server) and re.search(r"--max-per-ip\s+N\s", server)


def test_no_command_shows_a_python_type() -> None:
    # An argument (TARGET, SCHEMA) shows its metavar and no <str> beside it.
    commands = ["discover", "check", "hold", "locate", "survey", "schema", "server", "demo", "history"]
    for command in ["", *commands]:
        shown = run_cli(*([command] if command else []), "--help", env={"COLUMNS": "120"}).stdout
        assert re.findall(r"<(?:str|int|bool|float|path|list\[str\])>", shown) == [], command
    discover = run_cli("discover", "--help", env={"COLUMNS": "120"}).stdout
    # typer 0.2x: the name column shows the metavar; the floor (0.15) shows
    # the name and click's TEXT, and no Python type either way.
    assert re.search(r"\*\s+(?:TARGET|target\s+TEXT)\s+tcp://", discover)
