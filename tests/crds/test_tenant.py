"""Tenant parsing: defaults, the '*' rule mirrored from CEL, and refusals of what the router cannot use."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from inferflux.crds import Scope, Tenant, generate
from inferflux.crds.tenant import SPEC_RULES


def _tenant(**spec: Any) -> Tenant:
    body = {"apiVersion": "inferflux.io/v1alpha1", "kind": "Tenant", "metadata": {"name": "team-a"}}
    return Tenant.from_body({**body, "spec": spec})


def test_defaults_grant_inference_and_model_listing_on_every_model() -> None:
    tenant = _tenant()
    assert tenant.spec.scopes == [Scope.INFERENCE, Scope.MODELS_READ]
    assert tenant.spec.models == ["*"]
    assert tenant.spec.suspended is False
    assert tenant.spec.certificates.subjects == []


def test_camel_case_fields_parse() -> None:
    tenant = _tenant(
        displayName="Team A",
        scopes=["batch", "admin"],
        models=["gemma3-270m"],
        suspended=True,
        certificates={"subjects": ["CN=team-a,O=Example"]},
    )
    assert tenant.spec.display_name == "Team A"
    assert tenant.spec.scopes == ["batch", "admin"]
    assert tenant.to_wire()["spec"]["certificates"] == {"subjects": ["CN=team-a,O=Example"]}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"scopes": ["root"]}, "scopes"),
        ({"models": ["*", "gemma3-270m"]}, "'*' (every model) stands alone"),
        ({"unknown": 1}, "unknown"),
        ({"scopes": ["inference"] * 9}, "scopes"),
    ],
)
def test_refusals_name_the_problem(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _tenant(**spec)
    assert field in str(caught.value)


@pytest.mark.parametrize(
    ("models", "holds"),
    [(["*"], True), (["a", "b"], True), ([], True), (["*", "a"], False), (["a", "*"], False)],
)
def test_star_rule_in_python_agrees_with_its_cel(models: list[str], holds: bool) -> None:
    """The Python mirror of the CEL rule, on the cases CEL decides (the API server runs it in e2e)."""
    (rule,) = SPEC_RULES
    assert "size(self.models) == 1" in rule.cel
    spec = _tenant().spec.model_copy(update={"models": models})
    assert rule.holds(spec) is holds


def test_crd_has_columns_short_name_and_the_rule() -> None:
    crd = generate.render_crd(generate.TENANT)
    names = crd["spec"]["names"]
    assert names["shortNames"] == ["ift"]
    assert names["categories"] == ["inferflux"]
    version = crd["spec"]["versions"][0]
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Ready", "Status", "Scopes", "Models", "Suspended", "Spend", "Limit", "Used%", "Age"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["x-kubernetes-validations"] == [r.as_validation() for r in SPEC_RULES]
    assert spec["properties"]["scopes"]["items"]["enum"] == [s.value for s in Scope]
    assert "scale" not in version["subresources"]
