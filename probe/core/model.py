"""The one serializer of natprobe's result models.

A result is a tree of frozen dataclasses; its JSON is that tree with each
field under its own name, in declaration order. A field whose JSON key is
not a Python name (``net.ipv4.tcp_keepalive_time``) says so in its metadata
(``key``); a field that is left out of the JSON while it is None says so
too (``OMIT_NONE``: a server view UDP has not); and a part whose fields stand
in its parent's object says so (``INLINE``: a check's UDP part).
Enums are written as their values. Nothing else is converted: the models hold
JSON's own types, rounded where they are made.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

#: Metadata naming a field's JSON key, for keys that are not Python names.
KEY = "key"
#: Metadata: the field is absent from the JSON, not null, while it is None.
OMIT_NONE = "omit_none"
#: Metadata: the field (a model, or None) stands as its own fields in its parent's object.
INLINE = "inline"

#: What ``to_json`` makes: JSON's own types.
Json = str | int | float | bool | None | list["Json"] | dict[str, "Json"]
JsonObject = dict[str, Json]


class Model:
    """A command's result: ``to_json()`` is its JSON, by ``to_json`` below."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = to_json(self)
        return data


def key(name: str) -> dict[str, str]:
    """``field(metadata=key("SO_KEEPALIVE"))``: the field's JSON key."""
    return {KEY: name}


def omitted_when_none() -> dict[str, bool]:
    """``field(default=None, metadata=omitted_when_none())``."""
    return {OMIT_NONE: True}


def inline() -> dict[str, bool]:
    """``field(metadata=inline())``: the part's fields are its parent's; None adds none."""
    return {INLINE: True}


def to_json(value: Any) -> Any:
    """``value`` as JSON-ready data (dicts, lists, str, numbers, bool, None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            part = getattr(value, f.name)
            if f.metadata.get(INLINE):
                out.update(to_json(part) if part is not None else {})
            elif not (part is None and f.metadata.get(OMIT_NONE)):
                out[f.metadata.get(KEY, f.name)] = to_json(part)
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value
