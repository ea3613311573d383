"""The one serializer of natprobe's result models.

A result is a tree of frozen dataclasses; its JSON is that tree with each
field under its own name, in declaration order. A field whose JSON key is
not a Python name (``net.ipv4.tcp_keepalive_time``) says so in its metadata
(``key``). Enums are written as their values. Nothing else is converted:
the models hold JSON's own types, rounded where they are made.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

#: Metadata naming a field's JSON key, for keys that are not Python names.
KEY = "key"


def key(name: str) -> dict[str, str]:
    """``field(metadata=key("SO_KEEPALIVE"))``: the field's JSON key."""
    return {KEY: name}


def to_json(value: Any) -> Any:
    """``value`` as JSON-ready data (dicts, lists, str, numbers, bool, None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.metadata.get(KEY, f.name): to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value
