"""Runner events as they happen: NDJSON on stdout, or progress lines on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any


def ndjson(event: dict[str, Any], final: bool = False) -> None:
    """One JSON object per line on stdout, flushed at once.

    The runner's own "result" event is skipped: the command prints the result
    as the last line itself, also after an interrupt. Flushing every line means
    a run that is killed still leaves everything it learned.
    """
    if event["event"] == "result" and not final:
        return
    sys.stdout.write(json.dumps(event, allow_nan=False) + "\n")
    sys.stdout.flush()


def progress(event: dict[str, Any]) -> None:
    """Short progress lines on stderr for people watching without a live view."""
    if event["event"] == "test":
        mark = "survived" if event["outcome"] == "survived" else f"failed ({event['failure_mode']})"
        state = f" [{event['state']}]" if event.get("state") else ""
        sys.stderr.write(f"  [{event['t']:8.1f}s] idle {event['idle_s']:9.2f}s {mark}{state}\n")
    elif event["event"] == "start":
        sys.stderr.write(f"discovering {event['target']} (rtt {event['rtt_s'] * 1000:.1f} ms)\n")
    sys.stderr.flush()
