"""The committed CRDs are exactly what the pydantic models generate, and are structural."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from inferflux.crds import generate

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("crd", generate.ALL_CRDS, ids=lambda c: c.kind)
def test_committed_yaml_matches_models(crd: generate.CrdSpec) -> None:
    committed = (REPO / "crds" / crd.filename).read_text()
    assert committed == generate.render_yaml(crd), "crds/ drifted from the models: run `make crds`"


def test_check_mode_reports_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert generate.main(["--out", str(tmp_path)]) == 0
    (tmp_path / "prompt.yaml").write_text("# edited by hand\n")
    assert generate.main(["--check", "--out", str(tmp_path)]) == 1
    assert "prompt.yaml" in capsys.readouterr().err


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(node, dict):
        return []
    found = [(path, node)]
    for name, sub in node.get("properties", {}).items():
        found += _walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += _walk(node["additionalProperties"], f"{path}{{}}")
    return found


@pytest.mark.parametrize("crd", generate.ALL_CRDS, ids=lambda c: c.kind)
def test_schema_is_structural(crd: generate.CrdSpec) -> None:
    schema = generate.render_crd(crd)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "$ref" not in node, path
        assert node.get("nullable") is not True, path
        has_type = "type" in node or node.get("x-kubernetes-int-or-string")
        assert has_type or node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string"), f"{path}: anyOf only for int-or-string"
            assert all(set(branch) == {"type"} for branch in node["anyOf"]), f"{path}: types only in anyOf"
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            assert isinstance(node.get(bound, True), bool), f"{path}: {bound} must be a boolean"


def test_inference_model_crd_has_conventions() -> None:
    crd = generate.render_crd(generate.INFERENCE_MODEL)
    version = crd["spec"]["versions"][0]
    assert version["subresources"]["scale"]["labelSelectorPath"] == ".status.selector"
    assert "status" in version["subresources"]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert {"Ready", "Status", "Engine", "Active", "Age"} <= set(columns)
    assert crd["spec"]["names"]["categories"] == ["inferflux"]
    conditions = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    rules = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"]
    assert any("provider" in r["rule"] for r in rules)


def test_committed_files_are_valid_yaml_crds() -> None:
    for crd in generate.ALL_CRDS:
        doc = yaml.safe_load((REPO / "crds" / crd.filename).read_text())
        assert doc["kind"] == "CustomResourceDefinition"
        assert doc["metadata"]["name"] == f"{crd.plural}.inferflux.io"


@pytest.mark.parametrize("crd", generate.ALL_CRDS, ids=lambda c: c.kind)
def test_a_new_object_reads_in_progress_until_reconciled(crd: generate.CrdSpec) -> None:
    # kstatus calls an object with no status Current; the API server's default observedGeneration 0
    # keeps it InProgress (generation 1 and up) until the operator has reconciled it.
    version = generate.render_crd(crd)["spec"]["versions"][0]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    assert status["default"] == {"observedGeneration": 0}
    assert "observedGeneration" in status["properties"]
