"""The policy snapshot as a pure function of the Tenants: content, order, and the ambiguities it refuses."""

from __future__ import annotations

import json
import random
from typing import Any

from inferflux.crds import Tenant
from inferflux.crds.guardrails import GuardrailPolicy
from inferflux.crds.policy import CONFIGMAP_KEY, PolicySnapshot
from inferflux.operator.render.policy import (
    INVALID_NAME,
    SUBJECT_CONFLICT,
    compile_policy,
    policy_json,
    render_policy_configmap,
)


def tenant(name: str, **spec: Any) -> Tenant:
    meta = {"name": name, "namespace": "inferflux-system", "generation": 1}
    return Tenant.from_body(
        {"apiVersion": "inferflux.io/v1alpha1", "kind": "Tenant", "metadata": meta, "spec": spec}
    )


def test_a_tenant_becomes_its_policy() -> None:
    compiled = compile_policy(
        [
            tenant(
                "team-a",
                displayName="A",
                scopes=["models:read", "inference"],
                models=["m2", "m1"],
                suspended=True,
                oidc={"values": ["b@example.com", "a@example.com"]},
                audit={"retentionDays": 30, "recordPrompts": True},
                guardrails={"pii": {"email": "block"}, "maxInputChars": 1000},
                scheduling={"weight": 3, "priority": -2},
            )
        ]
    )
    assert compiled.problems == {}
    policy = compiled.snapshot.tenants["team-a"]
    assert policy.to_wire() == {
        "name": "team-a",
        "displayName": "A",
        "scopes": ["inference", "models:read"],
        "models": ["m1", "m2"],
        "suspended": True,
        "certificateSubjects": [],
        "oidcValues": ["a@example.com", "b@example.com"],
        "guardrails": GuardrailPolicy.model_validate(
            {"pii": {"email": "block"}, "maxInputChars": 1000}
        ).to_wire(),
        "source": "resource",
        "audit": {"retentionDays": 30, "recordPrompts": True},
        "scheduling": {"weight": 3, "priority": -2},
    }
    assert policy.guardrails.pii.email == "block"


def test_output_does_not_depend_on_input_order() -> None:
    tenants = [tenant(f"t{i}", models=[f"m{i}", "shared"], scopes=["batch", "inference"]) for i in range(20)]
    first = policy_json(compile_policy(tenants).snapshot)
    random.Random(7).shuffle(tenants)
    assert policy_json(compile_policy(tenants).snapshot) == first
    assert list(json.loads(first)["tenants"]) == sorted(f"t{i}" for i in range(20))


def test_the_configmap_carries_the_snapshot_the_router_parses() -> None:
    snapshot = compile_policy([tenant("team-a"), tenant("team-b", models=["m"])]).snapshot
    configmap = render_policy_configmap(snapshot, "inferflux-system")
    assert configmap["metadata"]["name"] == "inferflux-policy"
    assert configmap["metadata"]["namespace"] == "inferflux-system"
    assert configmap["metadata"]["labels"] == {
        "app.kubernetes.io/part-of": "inferflux",
        "app.kubernetes.io/managed-by": "inferflux-operator",
    }
    parsed = PolicySnapshot.model_validate_json(configmap["data"][CONFIGMAP_KEY])
    assert parsed == snapshot
    assert parsed.tenants["team-b"].models == ["m"]


def test_no_tenants_is_an_empty_snapshot() -> None:
    assert json.loads(policy_json(compile_policy([]).snapshot)) == {"version": 1, "tenants": {}}


def test_a_name_the_router_cannot_use_is_left_out_and_reported() -> None:
    compiled = compile_policy([tenant("team.a"), tenant("team-b")])
    assert list(compiled.snapshot.tenants) == ["team-b"]
    problem = compiled.problems["team.a"]
    assert (problem.reason, problem.published) == (INVALID_NAME, False)


def test_a_contested_certificate_subject_identifies_no_tenant() -> None:
    shared, own = "CN=shared,O=Example", "CN=a,O=Example"
    compiled = compile_policy(
        [
            tenant("a", certificates={"subjects": [shared, own]}),
            tenant("b", certificates={"subjects": [shared]}),
            tenant("c", certificates={"subjects": ["CN=c"]}),
        ]
    )
    tenants = compiled.snapshot.tenants
    assert tenants["a"].certificate_subjects == [own]
    assert tenants["b"].certificate_subjects == []
    assert tenants["c"].certificate_subjects == ["CN=c"]
    assert {name: p.reason for name, p in compiled.problems.items()} == {
        "a": SUBJECT_CONFLICT,
        "b": SUBJECT_CONFLICT,
    }
    assert all(p.published for p in compiled.problems.values())
    assert "also claimed by b" in compiled.problems["a"].message


def test_oidc_values_are_published_and_a_contested_one_identifies_no_tenant() -> None:
    compiled = compile_policy(
        [
            tenant("a", oidc={"values": ["alice@example.com", "ops@example.com"]}),
            tenant("b", oidc={"values": ["ops@example.com", "bob@example.com"]}),
        ]
    )
    tenants = compiled.snapshot.tenants
    assert tenants["a"].oidc_values == ["alice@example.com"]
    assert tenants["b"].oidc_values == ["bob@example.com"]
    assert compiled.problems["b"].reason == SUBJECT_CONFLICT
    assert "OIDC tenant-claim value 'ops@example.com' is also claimed by a" in compiled.problems["b"].message
