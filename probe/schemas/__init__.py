"""JSON Schemas (draft 2020-12) for every ``--json`` output, shipped in the package.

Each file is named after its schema: ``discover.schema.json`` describes
``natprobe.discover/1``. docs/schemas.md says what the fields mean; a test
keeps the two in step.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from probe.errors import UsageError

NAMES = (
    "discover",
    "check",
    "hold",
    "local",
    "history",
    "locate",
    "survey",
    "exporter-config",
    "events",
    "hung-server",
)


def schema_id(name: str) -> str:
    return f"natprobe.{name}/1"


def short_name(name: str) -> str:
    """``discover``, ``natprobe.discover`` or ``natprobe.discover/1`` into ``discover``."""
    short = name.strip().removeprefix("natprobe.").removesuffix("/1")
    if short not in NAMES:
        known = ", ".join(NAMES)
        raise UsageError(f"no schema named {name!r}; known: {known}")
    return short


def load(name: str) -> dict[str, Any]:
    """The schema for ``name`` (any form :func:`short_name` takes)."""
    text = resources.files(__package__).joinpath(f"{short_name(name)}.schema.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def by_id() -> dict[str, dict[str, Any]]:
    """Every schema by its ``$id``: a survey's paths refer to the discover
    schema (``$ref``), so a validator needs them all (a ``referencing``
    registry built from these pairs, for one)."""
    return {schema["$id"]: schema for schema in map(load, NAMES)}
