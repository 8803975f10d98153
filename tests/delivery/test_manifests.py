"""The kustomize base in manifests/: least-privilege RBAC, restricted pods, and CRDs in step with crds/."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

Grant = tuple[str, str, str]

ALL_WRITE = ("get", "list", "watch", "create", "patch", "update", "delete")

# The operator's grants, exactly (docs/deploy.md explains each). Anything more is a failure.
OPERATOR_GRANTS: set[Grant] = {
    *{("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("get", "list", "watch")},
    *{("", "namespaces", v) for v in ("get", "list", "watch")},
    *{
        ("inferflux.io", r, v)
        for r in ("inferencemodels", "prompts")
        for v in ("get", "list", "watch", "patch")
    },
    *{
        ("inferflux.io", r, v)
        for r in ("inferencemodels/status", "prompts/status")
        for v in ("get", "patch", "update")
    },
    *{("apps", "deployments", v) for v in ALL_WRITE},
    *{("", r, v) for r in ("services", "configmaps") for v in ALL_WRITE},
    *{("networking.k8s.io", "networkpolicies", v) for v in ALL_WRITE},
    *{("discovery.k8s.io", "endpointslices", v) for v in ("get", "list", "watch")},
    *{("", "pods", v) for v in ("get", "list", "watch")},
    *{("", "secrets", v) for v in ("get", "create", "patch")},
    *{(g, "events", v) for g in ("", "events.k8s.io") for v in ("create", "patch")},
    *{("inferflux.io", "tenants", v) for v in ("get", "list", "watch")},
    ("inferflux.io", "tenants/status", "patch"),
}


def grants(role: dict[str, Any]) -> set[Grant]:
    """Every (apiGroup, resource, verb) a Role or ClusterRole allows; wildcards fail loudly."""
    out: set[Grant] = set()
    for rule in role["rules"]:
        for part in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[part], f"{role['metadata']['name']}: wildcard in {part}"
        out |= {(g, r, v) for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    return out


def by_kind(objs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def bound_roles(objs: list[dict[str, Any]], account: str) -> list[dict[str, Any]]:
    """The Roles and ClusterRoles bound to a ServiceAccount by the bindings in objs."""
    roles = {(o["kind"], o["metadata"]["name"]): o for o in objs if o["kind"] in ("Role", "ClusterRole")}
    out = []
    for b in objs:
        if b["kind"] in ("RoleBinding", "ClusterRoleBinding") and any(
            s["kind"] == "ServiceAccount" and s["name"] == account for s in b["subjects"]
        ):
            out.append(roles[(b["roleRef"]["kind"], b["roleRef"]["name"])])
    return out


def test_operator_has_exactly_its_grants(kustomize_base: list[dict[str, Any]]) -> None:
    roles = bound_roles(kustomize_base, "inferflux-operator")
    assert roles, "the operator's ServiceAccount is bound to nothing"
    assert set().union(*(grants(r) for r in roles)) == OPERATOR_GRANTS


def test_operator_reads_tenants_only_in_its_namespace(kustomize_base: list[dict[str, Any]]) -> None:
    holders = [
        (r["kind"], r["metadata"].get("namespace"))
        for r in bound_roles(kustomize_base, "inferflux-operator")
        if any(resource.startswith("tenants") for _, resource, _ in grants(r))
    ]
    assert holders == [("Role", "inferflux-system")]


def test_operator_cannot_enumerate_secrets(kustomize_base: list[dict[str, Any]]) -> None:
    allowed = set().union(*(grants(r) for r in bound_roles(kustomize_base, "inferflux-operator")))
    assert not {("", "secrets", "list"), ("", "secrets", "watch")} & allowed


def test_router_reads_configmaps_and_writes_only_tenant_status(kustomize_base: list[dict[str, Any]]) -> None:
    roles = bound_roles(kustomize_base, "inferflux-router")
    allowed = set().union(*(grants(r) for r in roles))
    writes = {(g, r, v) for g, r, v in allowed if v not in {"get", "list", "watch"}}
    assert writes == {
        ("inferflux.io", "tenants/status", "patch"),  # spend in status.budget
        ("inferflux.io", "inferencemodels", "patch"),  # activity annotations only (the admission policy)
    }
    assert {(g, r) for g, r, _ in allowed} == {
        ("", "configmaps"),
        ("inferflux.io", "tenants/status"),
        ("inferflux.io", "inferencemodels"),
    }
    namespaced = [r for r in roles if r["kind"] == "Role"]
    assert [r["rules"][0]["resourceNames"] for r in namespaced] == [["inferflux-routing", "inferflux-policy"]]


def test_the_routers_model_patches_are_held_to_its_annotations(kustomize_base: list[dict[str, Any]]) -> None:
    (policy,) = by_kind(kustomize_base, "ValidatingAdmissionPolicy").values()
    (binding,) = by_kind(kustomize_base, "ValidatingAdmissionPolicyBinding").values()
    assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
    assert policy["spec"]["failurePolicy"] == "Fail"
    (match,) = policy["spec"]["matchConditions"]
    assert "system:serviceaccount:inferflux-system:inferflux-router" in match["expression"]
    rules = policy["spec"]["matchConstraints"]["resourceRules"]
    assert [rule["resources"] for rule in rules] == [["inferencemodels"]]


def test_workloads_run_as_their_own_accounts(kustomize_base: list[dict[str, Any]]) -> None:
    deployments = by_kind(kustomize_base, "Deployment")
    assert {n: d["spec"]["template"]["spec"].get("serviceAccountName") for n, d in deployments.items()} == {
        "inferflux-operator": "inferflux-operator",
        "inferflux-router": "inferflux-router",
        "inferflux-redis": None,
    }
    assert deployments["inferflux-redis"]["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_auth_is_on_and_no_secret_is_committed(kustomize_base: list[dict[str, Any]]) -> None:
    """The manifests are shared by every install: they name the auth Secret the installer creates."""
    assert not by_kind(kustomize_base, "Secret")
    router = by_kind(kustomize_base, "Deployment")["inferflux-router"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in router["containers"][0]["env"]}
    assert env["INFERFLUX_AUTH"]["value"] == "true"
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "inferflux-router-auth"
    (auth,) = [v for v in router["volumes"] if "secret" in v]
    assert auth["secret"]["secretName"] == "inferflux-router-auth"
    services = by_kind(kustomize_base, "Service")
    assert services["inferflux-router-admin"]["spec"]["type"] == "ClusterIP"
    assert set(services) == {"inferflux-router", "inferflux-router-admin", "inferflux-redis"}


def test_every_pod_is_restricted(
    kustomize_base: list[dict[str, Any]], pod_security: Callable[[dict[str, Any]], list[str]]
) -> None:
    workloads = [o for o in kustomize_base if o["kind"] in ("Deployment", "Pod", "Job")]
    assert workloads
    assert {o["metadata"]["name"]: pod_security(o) for o in workloads} == {
        o["metadata"]["name"]: [] for o in workloads
    }


def test_namespace_enforces_restricted(kustomize_base: list[dict[str, Any]]) -> None:
    (ns,) = by_kind(kustomize_base, "Namespace").values()
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_selectors_use_name_and_instance(kustomize_base: list[dict[str, Any]]) -> None:
    for d in by_kind(kustomize_base, "Deployment").values():
        selector = d["spec"]["selector"]["matchLabels"]
        assert {"app.kubernetes.io/name", "app.kubernetes.io/instance"} <= selector.keys()
        assert selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize("name", ["inferencemodel.yaml", "prompt.yaml", "tenant.yaml"])
def test_crds_are_the_generated_ones(repo: Path, name: str) -> None:
    generated = yaml.safe_load((repo / "crds" / name).read_text())
    assert yaml.safe_load((repo / "manifests" / "base" / "crds" / name).read_text()) == generated
    assert yaml.safe_load((repo / "helm" / "inferflux" / "crds" / name).read_text()) == generated


def test_manifests_are_rendered_from_the_chart(repo: Path) -> None:
    done = subprocess.run(
        [str(repo / ".venv" / "bin" / "python"), str(repo / "helm" / "render_manifests.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
