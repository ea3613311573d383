"""The terminal: a console that wraps long lines at words (rich). Only render/ imports rich.

What each command prints lives beside it: render/discover.py, check.py,
facts.py (locate, local), history.py, udp.py, survey.py, live.py.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from rich.console import Console
from rich.padding import Padding
from rich.text import Text

from probe.core.durations import format_duration


class _Console(Console):
    """On a terminal, long lines wrap at words, keeping their indent.

    Elsewhere (a pipe, a file) every line stays whole, as long as it is, so
    that scripts can grep it: soft wrap, as rich calls it.
    """

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if not self.soft_wrap and len(objects) == 1 and isinstance(objects[0], str):
            line = objects[0]
            text = line.lstrip(" ")
            indent = len(line) - len(text)
            if indent:
                # The indent says where a line belongs; wrapped lines keep it.
                objects = (Padding(Text.from_markup(text), (0, 0, 0, indent), expand=False),)
        super().print(*objects, **kwargs)


def make_console(stream: TextIO | None = None, width: int | None = None) -> Console:
    console = _Console(
        file=stream or sys.stdout,
        width=width,
        no_color=bool(os.environ.get("NO_COLOR")) or None,
        highlight=False,
    )
    console.soft_wrap = not console.is_terminal
    return console


def dur(value: Any) -> str:
    """A duration as people read it (90s, 2m5s); "-" where none was measured."""
    return format_duration(value) if isinstance(value, (int, float)) else "-"
