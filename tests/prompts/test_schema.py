"""The published JSON Schema is generated from PromptSpec and accepts exactly what it accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from inferflux.prompts.schema import SCHEMA_PATH, manifest_schema, render_schema, schema_drifted
from inferflux.prompts.sources import EMBEDDED_DIR

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_published_file_matches_the_model() -> None:
    assert not schema_drifted(), "run: python -m inferflux.prompts schema"


def test_drift_is_detected(tmp_path: Path) -> None:
    stale = tmp_path / "schema.json"
    stale.write_text(render_schema().replace("maxLength", "maxLen"), encoding="utf-8")
    assert schema_drifted(stale)


def test_schema_is_valid_json_schema_2020_12() -> None:
    Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text()))


@pytest.mark.parametrize("path", sorted(EMBEDDED_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_built_in_manifests_satisfy_the_schema(path: Path) -> None:
    Draft202012Validator(manifest_schema()).validate(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize(
    ("document", "word"),
    [
        ({"id": "a", "version": "1.0", "slices": {"s": "x"}}, "does not match"),
        ({"id": "a", "version": "1.0.0", "slices": {}}, "should be non-empty"),
        ({"id": "a", "version": "1.0.0", "slices": {"s": "x"}, "colour": "red"}, "Additional properties"),
        ({"id": "A B", "version": "1.0.0", "slices": {"s": "x"}}, "does not match"),
    ],
)
def test_schema_rejects_bad_manifests(document: dict[str, object], word: str) -> None:
    errors = [e.message for e in Draft202012Validator(manifest_schema()).iter_errors(document)]
    assert any(word in message for message in errors), errors


def test_in_cluster_example_spec_satisfies_the_schema() -> None:
    spec = yaml.safe_load((EXAMPLES / "prompt.yaml").read_text())["spec"]
    Draft202012Validator(manifest_schema()).validate(spec)
