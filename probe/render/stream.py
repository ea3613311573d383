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


def survey_progress(event: dict[str, Any]) -> None:
    """A survey's progress on stderr: each path's start and end, by number
    (every path's tests at once would be an unreadable interleaving)."""
    label = f"path {event['path'] + 1}"
    if event["event"] == "start":
        sys.stderr.write(f"{label}: discovering {event['target']} (rtt {event['rtt_s'] * 1000:.1f} ms)\n")
    elif event["event"] == "finish" and not event.get("state"):
        sys.stderr.write(f"{label}: bracket settled at {event['t']:.1f}s ({event['reason']})\n")
    elif event["event"] == "result":
        result = event["result"]
        lower, upper = result["lower_s"], result["upper_s"]
        found = f"{lower} - {upper} s" if upper is not None else f"no timeout seen up to {lower} s"
        sys.stderr.write(f"{label}: done, {found} ({result['reason']})\n")
    sys.stderr.flush()
