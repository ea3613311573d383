"""Every natprobe command line in the README parses with the real CLI: no
flag, subcommand or value there that natprobe would refuse."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer

from probe.cli.app import app

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands() -> list[str]:
    """``natprobe ...`` lines of the README's indented code blocks, continuations joined."""
    lines = README.read_text(encoding="utf-8").splitlines()
    commands: list[str] = []
    pending = ""
    for line in lines:
        if not line.startswith("    ") and not pending:
            continue
        text = line.strip()
        if pending:
            text = pending + " " + text
            pending = ""
        if text.endswith("\\"):
            pending = text[:-1].rstrip()
            continue
        for part in re.split(r"\s*&&\s*", text):
            if part.startswith("natprobe "):
                commands.append(part)
    return commands


COMMANDS = readme_commands()


def test_the_readme_has_the_commands_a_newcomer_runs() -> None:
    assert "natprobe demo" in COMMANDS
    assert any(c.startswith("natprobe discover ws://") for c in COMMANDS)
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize("line", COMMANDS)
def test_readme_command_parses(line: str) -> None:
    name, *argv = shlex.split(line, comments=True)[1:]
    group = typer.main.get_command(app)
    command = group.get_command(group.make_context("natprobe", [name]), name)  # type: ignore[attr-defined]
    assert command is not None, line
    # Parsing checks every option, choice and type; the command is not run.
    command.make_context(name, argv)
