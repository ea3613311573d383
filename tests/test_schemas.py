"""The shipped JSON Schemas: valid, strict where it matters, and in step with docs/schemas.md."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from probe.core.evidence import Evidence, FailureMode, IdleTest, Outcome
from probe.core.nat import NatFacts
from probe.core.results import Connections, DiscoverResult
from probe.errors import UsageError
from probe.schemas import NAMES, load, schema_id, short_name
from tests.conftest import validate_output

DOCS = Path(__file__).resolve().parent.parent / "docs" / "schemas.md"


def _discover() -> dict[str, Any]:
    evidence = Evidence()
    for idle, ok in [(1.9, True), (4.0, True), (4.4, False)]:
        evidence.add(IdleTest(0, idle, Outcome.SURVIVED if ok else Outcome.FAILED, None if ok else FailureMode.RESET))
    return DiscoverResult(
        target="tcp://h:4040", transport="tcp", bracket=evidence.bracket(), tests=evidence.tests, wall_s=5.0,
        nat=NatFacts("a:1", "b:2", True, False), max_idle_s=7800,
        reason="resolved", connections=Connections(3, 3, 63, 63),
    ).to_json()  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_every_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    schema = load(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:natprobe:schema:{schema_id(name)}"
    # The exporter's config is an input, and an event is a line of a stream:
    # neither carries a "schema" field.
    if name not in ("exporter-config", "events"):
        assert schema["properties"]["schema"] == {"const": schema_id(name)}


def test_schemas_load_by_any_form_of_their_name() -> None:
    assert load("natprobe.discover/1") == load("discover") == load("natprobe.discover")
    assert short_name(" check ") == "check"
    with pytest.raises(UsageError, match="no schema named 'nope'"):
        load("nope")


def test_a_missing_or_mistyped_bound_fails_validation() -> None:
    good = validate_output(_discover())
    missing = copy.deepcopy(good)
    del missing["lower_s"]
    with pytest.raises(ValidationError, match="'lower_s' is a required property"):
        validate_output(missing)
    mistyped = copy.deepcopy(good) | {"lower_s": "4.0"}
    with pytest.raises(ValidationError, match="is not of type 'number', 'null'"):
        validate_output(mistyped)
    bad_mode = copy.deepcopy(good) | {"failure_mode": "exploded"}
    with pytest.raises(ValidationError):
        validate_output(bad_mode)
    nested = copy.deepcopy(good)
    del nested["plan"]["keepalive"]["detect_s"]
    with pytest.raises(ValidationError, match="'detect_s' is a required property"):
        validate_output(nested)


def test_an_undocumented_top_level_field_is_caught() -> None:
    with pytest.raises(AssertionError, match=r"fields missing from the natprobe\.discover/1 schema"):
        validate_output(_discover() | {"surprise": 1})


def _doc_fields(section: str) -> set[str]:
    """Backticked names in the first column of the section's tables."""
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            names.update(re.findall(r"`([a-z_]+)`", first))
    return names


@pytest.mark.parametrize("name", NAMES)
def test_docs_name_exactly_the_schemas_top_level_fields(name: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index(f"## `{schema_id(name)}`")
    end = text.find("\n## ", start + 1)
    documented = _doc_fields(text[start : end if end > 0 else None])
    schema = load(name)
    fields = set(schema["properties"])
    for branch in schema.get("oneOf", []):
        fields |= set(branch["properties"])
    assert documented == fields, (sorted(documented - fields), sorted(fields - documented))


def test_the_exporter_config_schema_accepts_the_documented_example_and_refuses_typos() -> None:
    import yaml

    example = (Path(__file__).resolve().parent / "data" / "exporter-example.yml").read_text()
    validator = Draft202012Validator(load("exporter-config"))
    validator.validate(yaml.safe_load(example))
    typo = yaml.safe_load(example)
    typo["probes"][0]["check"]["idel"] = "2m"
    with pytest.raises(ValidationError):
        validator.validate(typo)
    both = yaml.safe_load(example)
    both["probes"][0]["discover"] = {"max_idle": "1h"}
    with pytest.raises(ValidationError):
        validator.validate(both)


def _udp_discover() -> dict[str, Any]:
    from probe.core.results import StateResult

    evidence = Evidence()
    evidence.add(IdleTest(0, 29.5, Outcome.SURVIVED, state="replied"))
    evidence.add(IdleTest(1, 30.2, Outcome.FAILED, FailureMode.SILENT_DROP, state="replied"))
    bracket = evidence.bracket()
    states = {name: StateResult(bracket, "resolved", 2) for name in ("unreplied", "replied", "stream")}
    return DiscoverResult(
        target="udp://h:4040", transport="udp", bracket=bracket, tests=evidence.tests, wall_s=140.0,
        nat=NatFacts("a:1", "b:2", True, True), max_idle_s=7800,
        reason="resolved", connections=Connections(3, 3, 63, 63),
        states=states, inbound_refresh=True, control="tcp://h:4040",
    ).to_json()  # fmt: skip


def test_a_udp_discovery_validates_and_its_shape_is_checked_by_transport() -> None:
    good = validate_output(_udp_discover())
    assert good["transport"] == "udp" and good["plan"]["transport"] == "udp"
    # A UDP result carrying TCP's plan, or a TCP result carrying UDP's, is refused.
    tcp_plan = _discover()["plan"]
    with pytest.raises(ValidationError):
        validate_output(copy.deepcopy(good) | {"plan": tcp_plan})
    with pytest.raises(ValidationError):
        validate_output(_discover() | {"plan": good["plan"]})
    bad_state = copy.deepcopy(good)
    bad_state["states"]["bound"] = bad_state["states"]["replied"]
    with pytest.raises(ValidationError):
        validate_output(bad_state)
    missing = copy.deepcopy(good)
    del missing["states"]["stream"]["upper_s"]
    with pytest.raises(ValidationError, match="'upper_s' is a required property"):
        validate_output(missing)
