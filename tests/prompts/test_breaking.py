"""Breaking-change classes, each on its own, and the bumps that make them acceptable."""

from __future__ import annotations

from typing import Any

import pytest

from inferflux.prompts.breaking import breaking_changes, version_problems

from .conftest import make_spec

BASE_VARIABLES = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "tone": {"type": "string"}},
    "required": ["name"],
}


def base(**fields: Any) -> Any:
    slices = {"system": "Hi {{name}} {{tone}}", "guardrails": "Be kind."}
    return make_spec(**{"slices": slices, "variables": BASE_VARIABLES, "metadata": {}, **fields})


def test_removing_a_slice_is_breaking() -> None:
    new = base(slices={"system": "Hi {{name}} {{tone}}"})
    assert breaking_changes(base(), new) == ["slice 'guardrails' removed"]


def test_removing_a_variable_is_breaking() -> None:
    variables = {**BASE_VARIABLES, "properties": {"name": {"type": "string"}}}
    new = base(variables=variables, slices={"system": "Hi {{name}}", "guardrails": "Be kind."})
    assert breaking_changes(base(), new) == ["variable 'tone' removed"]


def test_changing_a_variable_type_is_breaking() -> None:
    variables = {**BASE_VARIABLES, "properties": {"name": {"type": "string"}, "tone": {"type": "integer"}}}
    assert breaking_changes(base(), base(variables=variables)) == [
        "variable 'tone' changed type from 'string' to 'integer'"
    ]


def test_making_a_variable_required_is_breaking() -> None:
    variables = {**BASE_VARIABLES, "required": ["name", "tone"]}
    assert breaking_changes(base(), base(variables=variables)) == ["variable 'tone' became required"]


def test_adding_a_slice_or_optional_variable_is_not_breaking() -> None:
    variables = {
        **BASE_VARIABLES,
        "properties": {**BASE_VARIABLES["properties"], "extra": {"type": "string"}},
    }
    new = base(
        slices={"system": "Hi {{name}} {{tone}}", "guardrails": "Be kind.", "more": "x"}, variables=variables
    )
    assert breaking_changes(base(), new) == []


def test_content_change_without_a_bump_is_flagged() -> None:
    new = base(slices={"system": "Hello {{name}} {{tone}}", "guardrails": "Be kind."})
    assert version_problems(base(), new) == ["content changed without a version bump (still 1.0.0)"]


@pytest.mark.parametrize("version", ["1.0.1", "1.1.0", "2.0.0"])
def test_content_change_with_any_bump_passes(version: str) -> None:
    new = base(version=version, slices={"system": "Hello {{name}} {{tone}}", "guardrails": "Be kind."})
    assert version_problems(base(), new) == []


@pytest.mark.parametrize("version", ["1.0.0", "1.0.1", "1.9.0"])
def test_breaking_change_needs_a_major_bump(version: str) -> None:
    new = base(version=version, slices={"system": "Hi {{name}} {{tone}}"})
    problems = version_problems(base(), new)
    assert len(problems) == 1
    assert "breaking change without a major version bump" in problems[0]
    assert "slice 'guardrails' removed" in problems[0]


def test_breaking_change_with_a_major_bump_passes() -> None:
    assert version_problems(base(), base(version="2.0.0", slices={"system": "Hi {{name}} {{tone}}"})) == []


def test_in_0x_a_minor_bump_may_break() -> None:
    old, new = base(version="0.3.0"), base(version="0.4.0", slices={"system": "Hi {{name}} {{tone}}"})
    assert version_problems(old, new) == []
    problems = version_problems(old, base(version="0.3.1", slices={"system": "Hi {{name}} {{tone}}"}))
    assert "without a minor (0.x) version bump" in problems[0]


def test_version_going_down_is_flagged() -> None:
    assert version_problems(base(version="1.2.0"), base(version="1.1.0")) == [
        "version went down from 1.2.0 to 1.1.0"
    ]


def test_unchanged_manifest_passes() -> None:
    assert version_problems(base(), base()) == []
