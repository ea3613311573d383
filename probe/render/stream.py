"""Runner events as they happen: NDJSON on stdout, or progress lines on stderr.

An event arrives in its wire form (``natprobe.events/1``, already JSON): the
NDJSON writer prints it as it is, and the progress lines read only the few
fields they show.
"""

from __future__ import annotations

import json
import sys

from probe.core.model import Json, JsonObject


def _num(event: JsonObject, key: str) -> float:
    value = event.get(key)
    return float(value) if isinstance(value, int | float) else 0.0


def _text(value: Json) -> str:
    return "" if value is None else str(value)


def ndjson(event: JsonObject, final: bool = False) -> None:
    """One JSON object per line on stdout, flushed at once.

    The runner's own "result" event is skipped: the command prints the result
    as the last line itself, also after an interrupt. Flushing every line means
    a run that is killed still leaves everything it learned.
    """
    if event["event"] == "result" and not final:
        return
    sys.stdout.write(json.dumps(event, allow_nan=False) + "\n")
    sys.stdout.flush()


def progress(event: JsonObject) -> None:
    """Short progress lines on stderr for people watching without a live view."""
    if event["event"] == "test":
        mark = "survived" if event["outcome"] == "survived" else f"failed ({_text(event.get('failure_mode'))})"
        state = f" [{_text(event['state'])}]" if event.get("state") else ""
        sys.stderr.write(f"  [{_num(event, 't'):8.1f}s] idle {_num(event, 'idle_s'):9.2f}s {mark}{state}\n")
    elif event["event"] == "start":
        sys.stderr.write(f"discovering {_text(event.get('target'))} (rtt {_num(event, 'rtt_s') * 1000:.1f} ms)\n")
    sys.stderr.flush()


def survey_progress(event: JsonObject) -> None:
    """A survey's progress on stderr: each path's start and end, by number
    (every path's tests at once would be an unreadable interleaving)."""
    label = f"path {int(_num(event, 'path')) + 1}"
    if event["event"] == "start":
        sys.stderr.write(
            f"{label}: discovering {_text(event.get('target'))} (rtt {_num(event, 'rtt_s') * 1000:.1f} ms)\n"
        )
    elif event["event"] == "finish" and not event.get("state"):
        sys.stderr.write(f"{label}: bracket settled at {_num(event, 't'):.1f}s ({_text(event.get('reason'))})\n")
    elif event["event"] == "result" and isinstance(result := event.get("result"), dict):
        lower, upper = result.get("lower_s"), result.get("upper_s")
        found = f"{lower} - {upper} s" if upper is not None else f"no timeout seen up to {lower} s"
        sys.stderr.write(f"{label}: done, {found} ({_text(result.get('reason'))})\n")
    sys.stderr.flush()
