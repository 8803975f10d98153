"""The Helm chart helm/inferflux: lint, strict values, RBAC by watch mode, restricted pods, options."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

Objects = list[dict[str, Any]]
Render = Callable[..., Objects]

ALL_ON: dict[str, Any] = {
    "metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}},
    "namespace": {"create": True},
}


def kinds(objs: Objects) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for o in objs}


def pod_specs(objs: Objects) -> list[dict[str, Any]]:
    specs = [o["spec"]["template"]["spec"] for o in objs if o["kind"] == "Deployment"]
    return specs + [o["spec"] for o in objs if o["kind"] == "Pod"]


@pytest.mark.parametrize(
    "sets",
    [
        [],
        ["--set", "metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true,airGapped=true"],
        ["--set", "watchNamespaces={team-a,team-b}"],
    ],
    ids=["defaults", "everything-on", "namespaced"],
)
def test_helm_lint(helm: Path, repo: Path, sets: list[str]) -> None:
    done = subprocess.run(
        [str(helm), "lint", "--strict", str(repo / "helm" / "inferflux"), *sets],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"unknown": 1}, "additional properties 'unknown' not allowed"),
        ({"router": {"replica": 2}}, "additional properties 'replica' not allowed"),
        ({"networkPolicy": {"dns": {"podLabels": None}}}, "missing property 'podLabels'"),
        ({"image": {"digest": "latest"}}, "does not match pattern"),
        ({"router": {"replicas": 0}}, "minimum"),
        ({"watchNamespaces": ["Team_A"]}, "does not match pattern"),
    ],
)
def test_values_schema_rejects_bad_values(
    helm: Path, repo: Path, tmp_path: Path, values: Any, complaint: str
) -> None:

    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    done = subprocess.run(
        [str(helm), "template", "x", str(repo / "helm" / "inferflux"), "-f", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert complaint in done.stderr


@pytest.mark.parametrize(
    "values", [{}, ALL_ON, {"watchNamespaces": ["team-a"], **ALL_ON}], ids=["default", "all", "ns"]
)
def test_every_pod_is_restricted(
    render_chart: Render, pod_security: Callable[..., list[str]], values: Any
) -> None:
    workloads = [o for o in render_chart(values) if o["kind"] in ("Deployment", "Pod")]
    assert len(workloads) == 3, "operator, router and the helm test pod"
    assert {o["metadata"]["name"]: pod_security(o) for o in workloads} == {
        o["metadata"]["name"]: [] for o in workloads
    }


def test_labels_and_selectors(render_chart: Render) -> None:
    objs = render_chart({})
    for obj in objs:
        labels = obj["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/instance") == "inferflux", obj["metadata"]["name"]
        assert labels.get("app.kubernetes.io/part-of", "inferflux") == "inferflux"
    selectors = [
        o["spec"]["selector"]["matchLabels"]
        for o in objs
        if o["kind"] in ("Deployment", "PodDisruptionBudget")
    ]
    selectors += [o["spec"]["selector"] for o in objs if o["kind"] == "Service"]
    for selector in selectors:
        assert set(selector) == {
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
        }


def test_all_namespaces_mode_uses_a_cluster_role(render_chart: Render) -> None:
    objs = kinds(render_chart({}))
    rules = objs[("ClusterRole", "", "inferflux-operator")]["rules"]
    assert any("namespaces" in r["resources"] for r in rules)
    assert not [k for k in objs if k[0] == "Role" and k[2].startswith("inferflux-operator")]


def test_namespaced_mode_uses_roles_in_each_namespace(render_chart: Render) -> None:
    objs = kinds(render_chart({"watchNamespaces": ["team-a", "team-b"]}))
    cluster_rules = objs[("ClusterRole", "", "inferflux-operator")]["rules"]
    assert cluster_rules == [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    for ns in ("team-a", "team-b"):
        role = objs[("Role", ns, "inferflux-operator")]
        assert {r for rule in role["rules"] for r in rule["resources"]} >= {"inferencemodels", "deployments"}
        assert (
            objs[("RoleBinding", ns, "inferflux-operator")]["subjects"][0]["namespace"] == "inferflux-system"
        )
        assert ("Role", ns, "inferflux-router-prompts") in objs
    home = objs[("Role", "inferflux-system", "inferflux-operator-home")]
    assert {r for rule in home["rules"] for r in rule["resources"]} == {
        "configmaps",
        "networkpolicies",
        "events",
    }
    assert ("ClusterRole", "", "inferflux-router") not in objs
    deployment = objs[("Deployment", "inferflux-system", "inferflux-operator")]
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["INFERFLUX_NAMESPACES"] == "team-a,team-b"


def test_router_reads_only_the_named_provider_secrets(render_chart: Render) -> None:
    secrets = [{"namespace": "team-a", "name": "openai"}, {"namespace": "team-a", "name": "groq"}]
    objs = kinds(render_chart({"router": {"providerSecrets": secrets}}))
    role = objs[("Role", "team-a", "inferflux-router-provider-keys")]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["groq", "openai"], "verbs": ["get"]}
    ]


def test_private_registry(render_chart: Render) -> None:
    digest = "sha256:" + "c" * 64
    values = {
        "image": {"registry": "registry.corp", "repository": "ml/inferflux", "digest": digest},
        "runtimeImage": {"registry": "registry.corp", "repository": "ml/runtime", "tag": "1.2.3"},
        "imagePullSecrets": ["corp-pull"],
    }
    objs = render_chart(values)
    for spec in pod_specs(objs):
        assert spec["imagePullSecrets"] == [{"name": "corp-pull"}]
        assert spec["containers"][0]["image"] == f"registry.corp/ml/inferflux@{digest}"
    operator = kinds(objs)[("Deployment", "inferflux-system", "inferflux-operator")]
    env = {e["name"]: e.get("value") for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["INFERFLUX_RUNTIME_IMAGE"] == "registry.corp/ml/runtime:1.2.3"
    assert env["INFERFLUX_IMAGE_PULL_SECRETS"] == "corp-pull"


def test_monitoring_is_off_by_default(render_chart: Render) -> None:
    assert not {o["kind"] for o in render_chart({})} & {"ServiceMonitor", "PrometheusRule"}
    objs = render_chart(ALL_ON)
    monitors = [o for o in objs if o["kind"] == "ServiceMonitor"]
    assert {m["metadata"]["name"] for m in monitors} == {"inferflux-router", "inferflux-runtime"}
    (rule,) = [o for o in objs if o["kind"] == "PrometheusRule"]
    assert "memory_headroom_low" in {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}


def test_pod_disruption_budgets(render_chart: Render) -> None:
    pdbs = {o["metadata"]["name"]: o["spec"] for o in render_chart({}) if o["kind"] == "PodDisruptionBudget"}
    assert pdbs["inferflux-operator"]["maxUnavailable"] == 1
    assert pdbs["inferflux-router"]["minAvailable"] == 1
    single = {
        o["metadata"]["name"]: o["spec"]
        for o in render_chart({"router": {"replicas": 1}})
        if o["kind"] == "PodDisruptionBudget"
    }
    assert "minAvailable" not in single["inferflux-router"], "minAvailable 1 of 1 would block every drain"


def test_helm_test_hook_calls_v1_models(render_chart: Render) -> None:
    (pod,) = [o for o in render_chart({}) if o["kind"] == "Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["command"][-1]
    assert "http://inferflux-router.inferflux-system.svc:8000/v1/models" in script
    assert pod["metadata"]["labels"].get("app.kubernetes.io/part-of") is None, (
        "default-deny must not catch it"
    )


def test_air_gapped_value_reaches_the_operator(render_chart: Render) -> None:
    operator = kinds(render_chart({"airGapped": True}))[
        ("Deployment", "inferflux-system", "inferflux-operator")
    ]
    env = {e["name"]: e.get("value") for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["INFERFLUX_AIR_GAPPED"] == "true"


def test_drift_check_notices_a_hand_edit(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    spec = importlib.util.spec_from_file_location("render_manifests", repo / "helm" / "render_manifests.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shutil.copytree(repo / "manifests", tmp_path / "manifests")
    monkeypatch.setattr(module, "BASE", tmp_path / "manifests" / "base")
    monkeypatch.setattr(module, "ARGOCD", tmp_path / "manifests" / "argocd")
    assert module.main(["--check"]) == 0
    edited = tmp_path / "manifests" / "base" / "operator-rbac.yaml"
    edited.write_text(
        edited.read_text().replace("verbs: [get, create, patch]", "verbs: [get, list, create, patch]")
    )
    (tmp_path / "manifests" / "base" / "extra.yaml").write_text("kind: ConfigMap\n")
    assert module.main(["--check"]) == 1
    assert module.main([]) == 0
    assert module.main(["--check"]) == 0
    assert not (tmp_path / "manifests" / "base" / "extra.yaml").exists()
