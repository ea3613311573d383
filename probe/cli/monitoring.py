"""``--textfile`` and ``--nagios`` for check and discover: monitoring outputs.

The textfile is node_exporter's textfile collector format, written in one
step; Nagios mode prints the plugin line and exits with the plugin's code.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from probe import __version__
from probe.cli.common import NAGIOS, fail
from probe.core import nagios
from probe.core.check import CheckResult
from probe.core.metrics import ProbeResult, ProbeState, families
from probe.core.results import DiscoverResult
from probe.errors import ExitCode, NatprobeError, UsageError
from probe.run.prometheus import carry, exposition, write_textfile

Textfile = Annotated[
    str | None,
    typer.Option("--textfile", help="Also write the result as metrics for node_exporter's textfile collector."),
]
ProbeName = Annotated[
    str | None, typer.Option("--probe-name", help="The probe label in --textfile metrics (default: the target).")
]
Nagios = Annotated[
    bool, typer.Option("--nagios", help="Print one Nagios/Icinga plugin line; exit 0 OK, 2 CRITICAL, 3 UNKNOWN.")
]


@dataclass
class Monitor:
    kind: str
    probe: str
    textfile: Path | None
    nagios: bool
    started: float = 0.0

    @classmethod
    def begin(cls, kind: str, target: str, textfile: str | None, probe: str | None, use_nagios: bool) -> Monitor:
        # Set first, so that even a usage error found below speaks Nagios.
        NAGIOS.set(use_nagios)
        path = Path(textfile) if textfile else None
        if path is not None and not os.access(path.parent if str(path.parent) else ".", os.W_OK):
            # Refused before a run that may take minutes, not after it.
            fail(f"cannot write --textfile {textfile!r}: its directory is missing or not writable", ExitCode.USAGE)
        return cls(kind, probe or target, path, use_nagios, time.time())

    def _write(self, result: ProbeResult | None, error: str | None) -> None:
        if self.textfile is None:
            return
        state = ProbeState(self.probe, self.kind)
        carry(state, self.textfile)
        state.record(self.started, time.time(), result, error)
        try:
            write_textfile(self.textfile, exposition(lambda: families([state], __version__)))
        except OSError as exc:
            fail(f"cannot write --textfile {str(self.textfile)!r}: {exc.strerror or exc}", ExitCode.USAGE)

    def failed(self, exc: NatprobeError) -> None:
        """The run ended in an error: count it in the textfile (usage errors are not runs)."""
        if not isinstance(exc, UsageError):
            self._write(None, exc.message)

    def done(self, result: CheckResult | DiscoverResult, expect_min_s: float | None = None) -> None:
        """Write the textfile; in Nagios mode print the line and exit."""
        self._write(result, None)
        if not self.nagios:
            return
        if isinstance(result, CheckResult):
            status, line = nagios.for_check(result)
        else:
            status, line = nagios.for_discover(result, expect_min_s)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        raise typer.Exit(int(status))
