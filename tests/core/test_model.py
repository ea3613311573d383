"""The one serializer, and the schemas checked against the models they describe."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pytest

from probe.core.model import key, to_json
from probe.core.plan import Plan
from probe.core.recommend import Recommendations
from probe.core.udp_advice import UdpPlan, UdpRecommendations
from probe.schemas import load


class Colour(StrEnum):
    RED = "red"


@dataclass(frozen=True)
class Inner:
    so: int = field(metadata=key("SO_KEEPALIVE"))
    colour: Colour = Colour.RED


@dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner
    many: list[Inner]
    by_name: dict[str, Inner]
    maybe: Inner | None = None


def test_fields_in_order_under_their_keys_enums_as_values() -> None:
    value = Outer("x", Inner(1), [Inner(2)], {"a": Inner(3)})
    data = to_json(value)
    assert data == {
        "name": "x",
        "inner": {"SO_KEEPALIVE": 1, "colour": "red"},
        "many": [{"SO_KEEPALIVE": 2, "colour": "red"}],
        "by_name": {"a": {"SO_KEEPALIVE": 3, "colour": "red"}},
        "maybe": None,
    }
    assert list(data) == ["name", "inner", "many", "by_name", "maybe"]
    assert to_json((1, "a", None)) == [1, "a", None]


def _dataclass_in(hint: Any) -> tuple[str, type] | None:
    """("one" | "list" | "dict", the dataclass) a field's type holds, if any."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return "one", hint  # type: ignore[return-value]
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            found = _dataclass_in(arg)
            if found is not None:
                return found
    if origin is list:
        inner = _dataclass_in(typing.get_args(hint)[0])
        return None if inner is None else ("list", inner[1])
    if origin is dict:
        inner = _dataclass_in(typing.get_args(hint)[1])
        return None if inner is None else ("dict", inner[1])
    return None


def _check(model: type, schema: dict[str, Any], where: str) -> int:
    """Every field of ``model`` is a property of ``schema``, always present,
    and nothing else is; recursively. Returns how many objects it checked."""
    hints = typing.get_type_hints(model)
    names = {f.name: f.metadata.get("key", f.name) for f in dataclasses.fields(model)}
    props = schema.get("properties")
    if props is None:  # an open map (additionalProperties): names only
        assert "additionalProperties" in schema, where
        return 1
    assert set(props) == set(names.values()), where
    assert set(schema.get("required", [])) == set(names.values()), where
    checked = 1
    for attr, name in names.items():
        found = _dataclass_in(hints[attr])
        if found is None:
            continue
        kind, inner = found
        sub = props[name]
        if kind == "one":
            checked += _check(inner, sub, f"{where}.{name}")
        elif kind == "list":
            checked += _check(inner, sub["items"], f"{where}.{name}[]")
        else:
            for each, entry in sub["properties"].items():
                checked += _check(inner, entry, f"{where}.{name}.{each}")
    return checked


@pytest.mark.parametrize(
    ("branch", "part", "model", "objects"),
    [
        ("else", "plan", Plan, 6),
        ("else", "recommendations", Recommendations, 3),
        ("then", "plan", UdpPlan, 4),
        ("then", "recommendations", UdpRecommendations, 5),
    ],
)
def test_the_discover_schema_describes_the_models(branch: str, part: str, model: type, objects: int) -> None:
    # The schema's "if udp: then ... else ..." holds the two transports' shapes.
    schema = load("natprobe.discover/1")
    (shapes,) = [s for s in schema["allOf"] if s.get("if", {}).get("properties", {}).get("transport")]
    assert _check(model, shapes[branch]["properties"][part], f"{branch}.{part}") == objects
