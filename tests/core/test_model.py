"""The one serializer, and the schemas checked against the models they describe."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pytest

from probe.core.check import CheckResult
from probe.core.hold import HoldResult
from probe.core.hung import HungServerDemo
from probe.core.local import LocalFacts
from probe.core.locate import LocateResult
from probe.core.model import INLINE, KEY, OMIT_NONE, inline, key, omitted_when_none, to_json
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


def _nullable(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)


def _shape(model: type, optional: bool = False) -> dict[str, tuple[Any, bool]]:
    """JSON key -> (type hint, always present) of ``model``'s object: an inline
    part's fields are its own, present only while the part always is."""
    hints = typing.get_type_hints(model)
    shape: dict[str, tuple[Any, bool]] = {}
    for f in dataclasses.fields(model):
        if f.metadata.get(INLINE):
            found = _dataclass_in(hints[f.name])
            assert found is not None and found[0] == "one", f"{model.__name__}.{f.name} inlines no model"
            shape |= _shape(found[1], optional or _nullable(hints[f.name]))
        else:
            shape[f.metadata.get(KEY, f.name)] = (hints[f.name], not optional and not f.metadata.get(OMIT_NONE))
    return shape


def _object(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The object a property's schema describes: itself, or its non-null branch."""
    kinds = schema.get("type", [])
    if "properties" in schema or "additionalProperties" in schema or "object" in kinds:
        return schema
    for branch in schema.get("oneOf", []) + schema.get("anyOf", []):
        if branch.get("type") != "null":
            return _object(branch)
    return None


#: Fields a model always writes that its schema leaves optional: added to a
#: /1 schema after its first release, so results written before still validate.
LATER = {"proxy"}


#: Fields a model always writes that its schema leaves optional: added to a
#: /1 schema after its first release, so results written before still validate.
LATER = {"proxy"}


def _check(model: type, schema: dict[str, Any], where: str) -> int:
    """Every field of ``model`` is a property of ``schema`` (or of one of its
    ``oneOf`` branches, for the parts only one kind of result has), required
    exactly when the JSON always has it, and nothing else is; recursively.
    Returns how many objects it checked."""
    props = dict(schema.get("properties") or {})
    if not props:  # an open map (additionalProperties) or any object: names only
        assert "additionalProperties" in schema or "object" in schema.get("type", []), where
        return 1
    for branch in schema.get("oneOf", []):
        props = branch.get("properties", {}) | props
    shape = _shape(model)
    assert set(props) == set(shape), (
        f"{where}: schema {sorted(set(props) - set(shape))}, model {sorted(set(shape) - set(props))}"
    )
    always = {name for name, (_, present) in shape.items() if present}
    required = set(schema.get("required", []))
    assert required <= always, f"{where}: the schema requires what the JSON may lack: {sorted(required - always)}"
    assert always - required <= LATER, f"{where}: the schema does not require {sorted(always - required - LATER)}"
    checked = 1
    for name, (hint, _) in shape.items():
        found = _dataclass_in(hint)
        if found is None:
            continue
        kind, inner = found
        sub = props[name]
        if kind == "one":
            one = _object(sub)
            assert one is not None, f"{where}.{name} is no object in the schema"
            checked += _check(inner, one, f"{where}.{name}")
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


@pytest.mark.parametrize(
    ("name", "model", "objects"),
    [
        ("natprobe.check/1", CheckResult, 11),
        ("natprobe.hold/1", HoldResult, 7),
        ("natprobe.locate/1", LocateResult, 4),
        ("natprobe.local/1", LocalFacts, 5),
        ("natprobe.hung-server/1", HungServerDemo, 5),
    ],
)
def test_each_commands_schema_describes_its_model(name: str, model: type, objects: int) -> None:
    assert _check(model, load(name), name) == objects


@dataclass(frozen=True)
class Part:
    a: int
    b: str | None = field(default=None, metadata=omitted_when_none())


@dataclass(frozen=True)
class Whole:
    name: str
    part: Part | None = field(default=None, metadata=inline())
    note: str | None = field(default=None, metadata=omitted_when_none())


def test_an_inline_part_stands_in_its_parent_and_an_omitted_none_is_absent() -> None:
    assert to_json(Whole("x")) == {"name": "x"}
    assert to_json(Whole("x", Part(1), "n")) == {"name": "x", "a": 1, "note": "n"}
    assert list(to_json(Whole("x", Part(1, "b"), "n"))) == ["name", "a", "b", "note"]
    assert to_json(Part(0, "")) == {"a": 0, "b": ""}  # only None is omitted, not what is falsy
    assert _shape(Whole) == {
        "name": (str, True),
        "a": (int, False),
        "b": (str | None, False),
        "note": (str | None, False),
    }
