"""JSON on stdout: exactly one object per command, nothing else."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from probe.core.model import JsonObject


def dump(obj: JsonObject, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    out.write(json.dumps(obj, indent=2, allow_nan=False) + "\n")
    out.flush()
