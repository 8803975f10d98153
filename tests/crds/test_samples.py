"""Samples in docs/examples are accepted or rejected by the same rules the API server runs.

The e2e suite checks the invalid samples against a real API server; here the pydantic models and
the generated OpenAPI schema (via jsonschema) judge them without a cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from inferflux.crds import InferenceModel, Prompt, Tenant, generate

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
PARSERS: dict[str, Any] = {"InferenceModel": InferenceModel, "Prompt": Prompt, "Tenant": Tenant}
SCHEMAS = {
    crd.kind: generate.render_crd(crd)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for crd in generate.ALL_CRDS
}
VALID = sorted(EXAMPLES.glob("*.yaml"))
INVALID = sorted((EXAMPLES / "invalid").glob("*.yaml"))


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict)
    return doc


def _schema_errors(doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft4Validator(SCHEMAS[doc["kind"]])  # OpenAPI v3.0's dialect
    return [e.message for e in validator.iter_errors(doc)]


def test_there_are_samples_of_each_kind() -> None:
    kinds = {_load(p)["kind"] for p in VALID}
    assert kinds == {"InferenceModel", "Prompt", "Tenant"}
    assert len(INVALID) >= 8


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_valid_sample_is_accepted(path: Path) -> None:
    doc = _load(path)
    assert _schema_errors(doc) == []
    PARSERS[doc["kind"]].from_body(doc)


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_sample_is_rejected(path: Path) -> None:
    doc = _load(path)
    expected = doc["metadata"]["annotations"]["inferflux.io/expected-error"]
    with pytest.raises(ValidationError) as caught:
        PARSERS[doc["kind"]].from_body(doc)
    rule_messages = [r.message for crd in generate.ALL_CRDS for r in crd.spec_rules]
    if expected in rule_messages:
        # A cross-field rule: pydantic must report the very message the API server's CEL rule does.
        assert expected in str(caught.value)
