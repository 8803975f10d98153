"""Templates, slice order and semver: the small pure pieces rendering relies on."""

from __future__ import annotations

import pytest

from inferflux.prompts.compiled import VariablesError, compile_prompt
from inferflux.prompts.order import slice_order
from inferflux.prompts.semver import Bump, bump, latest
from inferflux.prompts.template import compile_template

from .conftest import make_spec


def test_placeholders_are_replaced_and_the_rest_kept() -> None:
    template = compile_template("Hi {{ name }}, {{name}}! {{ not a name }} {x}")
    assert template.names == {"name"}
    assert template.render({"name": "Ada"}) == "Hi Ada, Ada! {{ not a name }} {x}"


def test_values_are_not_re_expanded() -> None:
    assert compile_template("{{a}}").render({"a": "{{b}}"}) == "{{b}}"


def test_slices_follow_the_declared_order_then_names() -> None:
    spec = make_spec(
        slices={"b": "B", "a": "A", "z": "Z", "c": "C"}, metadata={"inferflux.io/slice-order": "z, c"}
    )
    assert slice_order(spec) == ["z", "c", "a", "b"]


def test_variables_are_validated_without_echoing_values() -> None:
    compiled = compile_prompt(make_spec())
    with pytest.raises(VariablesError) as caught:
        compiled.render({"name": "x" * 50})
    assert caught.value.problems == ["name: fails 'maxLength' of the variables schema"]
    assert "xxxx" not in str(caught.value)
    with pytest.raises(VariablesError, match="fails 'required'"):
        compiled.render({})


def test_non_strict_render_skips_the_schema() -> None:
    assert compile_prompt(make_spec()).render({}, strict=False) == "You greet .\n\nBe kind."


def test_numbers_and_booleans_render_as_text() -> None:
    spec = make_spec(
        slices={"s": "{{n}} {{b}}"},
        variables={"type": "object", "properties": {"n": {"type": "number"}, "b": {"type": "boolean"}}},
        metadata={},
    )
    assert compile_prompt(spec).render({"n": 2.5, "b": True}) == "2.5 true"


@pytest.mark.parametrize(
    ("old", "new", "step"),
    [
        ("1.0.0", "1.0.0", Bump.NONE),
        ("1.0.0", "1.0.1", Bump.PATCH),
        ("1.0.0", "1.1.0", Bump.MINOR),
        ("1.0.0", "2.0.0", Bump.MAJOR),
        ("0.1.0", "0.2.0", Bump.MAJOR),
        ("1.0.0-rc.1", "1.0.0", Bump.PATCH),
        ("1.0.0", "1.0.0-rc.1", Bump.DOWNGRADE),
        ("1.10.0", "1.9.0", Bump.DOWNGRADE),
    ],
)
def test_bumps(old: str, new: str, step: Bump) -> None:
    assert bump(old, new) is step


def test_latest_uses_semver_precedence() -> None:
    assert latest(["1.9.0", "1.10.0", "1.10.0-rc.2", "1.2.0"]) == "1.10.0"


def test_remembered_validation_still_rejects_and_tells_types_apart() -> None:
    spec = make_spec(
        slices={"s": "{{n}}"},
        variables={"type": "object", "properties": {"n": {"type": "integer"}}},
        metadata={},
    )
    compiled = compile_prompt(spec)
    assert compiled.render({"n": 1}) == "1"
    for _ in range(2):  # the second time answers from memory
        with pytest.raises(VariablesError, match="fails 'type'"):
            compiled.render({"n": 1.5})
    with pytest.raises(VariablesError):
        compiled.render({"n": True})  # equal to 1 as a dict key, but not an integer to JSON Schema
    assert compiled.render({"n": [1]}, strict=False) == "[1]"
