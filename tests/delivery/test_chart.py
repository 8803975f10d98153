"""The Helm chart helm/inferflux: lint, strict values, RBAC by watch mode, restricted pods, options."""

from __future__ import annotations

import base64
import importlib.util
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferflux.router.resume import parse_keyring

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
        ({"auth": {"enabled": "yes"}}, "got string, want boolean"),
        ({"auth": {"enabled": True, "secret": "x"}}, "additional properties 'secret' not allowed"),
        ({"redis": {"enabled": False, "url": "http://store:6379"}}, "does not match pattern"),
        ({"router": {"admin": {"port": 80}}}, "minimum"),
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
    assert len(workloads) == 4, "operator, router, redis and the helm test pod"
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
    assert not any("tenants" in r["resources"] for r in rules), "Tenants are read in one namespace only"
    roles = [k for k in objs if k[0] == "Role" and k[2].startswith("inferflux-operator")]
    assert roles == [("Role", "inferflux-system", "inferflux-operator-tenants")]


@pytest.mark.parametrize("values", [{}, {"watchNamespaces": ["team-a"]}], ids=["all", "namespaced"])
def test_tenants_are_read_and_reported_in_the_operators_namespace_only(
    render_chart: Render, values: Any
) -> None:
    objs = kinds(render_chart(values))
    tenant_rules = [
        (key, rule)
        for key, obj in objs.items()
        if key[0] in ("Role", "ClusterRole")
        for rule in obj["rules"]
        if any(r.startswith("tenants") for r in rule["resources"])
    ]
    assert tenant_rules == [
        (("Role", "inferflux-system", "inferflux-operator-tenants"),
         {"apiGroups": ["inferflux.io"], "resources": ["tenants"], "verbs": ["get", "list", "watch"]}),
        (("Role", "inferflux-system", "inferflux-operator-tenants"),
         {"apiGroups": ["inferflux.io"], "resources": ["tenants/status"], "verbs": ["patch"]}),
        # the router writes spend into status.budget
        (("Role", "inferflux-system", "inferflux-router-routing"),
         {"apiGroups": ["inferflux.io"], "resources": ["tenants/status"], "verbs": ["patch"]}),
    ]  # fmt: skip
    binding = objs[("RoleBinding", "inferflux-system", "inferflux-operator-tenants")]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "inferflux-operator", "namespace": "inferflux-system"}
    ]


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
        "redis": {"image": {"registry": "registry.corp", "repository": "mirror/redis", "tag": "7"}},
    }
    objs = render_chart(values)
    for spec in pod_specs(objs):
        assert spec["imagePullSecrets"] == [{"name": "corp-pull"}]
        ours = spec["containers"][0]["name"] != "redis"
        assert spec["containers"][0]["image"] == (
            f"registry.corp/ml/inferflux@{digest}" if ours else "registry.corp/mirror/redis:7"
        )
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
    assert "error.code != 401" in script, "with auth on, an anonymous call must be refused"
    (open_pod,) = [o for o in render_chart({"auth": {"enabled": False}}) if o["kind"] == "Pod"]
    assert "401" not in open_pod["spec"]["containers"][0]["command"][-1]
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


def router_of(objs: Objects) -> dict[str, Any]:
    (deployment,) = [
        o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "inferflux-router"
    ]
    return deployment


def env_items(deployment: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def mounted_file(deployment: dict[str, Any], path: str) -> tuple[str, str]:
    """The (Secret name, key) that the router sees at ``path``."""
    spec = deployment["spec"]["template"]["spec"]
    for mount in spec["containers"][0]["volumeMounts"]:
        if path.startswith(mount["mountPath"] + "/"):
            (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
            (item,) = [i for i in volume["secret"]["items"] if i["path"] == path.rsplit("/", 1)[1]]
            return volume["secret"]["secretName"], item["key"]
    raise AssertionError(f"nothing mounted at {path}")


def test_auth_is_on_by_default_with_secrets_the_chart_makes(render_chart: Render) -> None:
    objs = render_chart({})
    env = env_items(router_of(objs))
    assert env["INFERFLUX_AUTH"]["value"] == "true"
    assert "INFERFLUX_AUTH_ALLOW_OPEN" not in env
    assert env["INFERFLUX_POLICY_CONFIGMAP"]["value"] == "inferflux-system/inferflux-policy"
    secret = kinds(objs)[("Secret", "inferflux-system", "inferflux-router-auth")]
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert set(data) == {"hashing-secret", "admin-token", "redis-password", "resume-keys"}
    assert len(data["hashing-secret"]) >= 32
    assert mounted_file(router_of(objs), env["INFERFLUX_AUTH_SECRET_FILE"]["value"]) == (
        "inferflux-router-auth",
        "hashing-secret",
    )
    assert mounted_file(router_of(objs), env["INFERFLUX_ADMIN_TOKEN_FILE"]["value"]) == (
        "inferflux-router-auth",
        "admin-token",
    )
    # One resume keyring for every replica (docs/router.md): a key the router accepts, mounted.
    assert mounted_file(router_of(objs), env["INFERFLUX_RESUME_KEYS_FILE"]["value"]) == (
        "inferflux-router-auth",
        "resume-keys",
    )
    assert parse_keyring(data["resume-keys"].decode()).signing[0] == "k1"
    again = kinds(render_chart({}))[("Secret", "inferflux-system", "inferflux-router-auth")]
    assert again["data"]["hashing-secret"] != secret["data"]["hashing-secret"], "random, not a constant"
    assert again["data"]["resume-keys"] != secret["data"]["resume-keys"], "random, not a constant"


def test_workers_are_passed_on_and_need_a_shared_redis(render_chart: Render, helm: Path, repo: Path) -> None:
    env = env_items(router_of(render_chart({"router": {"workers": 3}})))
    assert env["INFERFLUX_ROUTER_WORKERS"]["value"] == "3"
    chart = str(repo / "helm" / "inferflux")
    done = subprocess.run(
        [
            str(helm),
            "template",
            "x",
            chart,
            "--set",
            "redis.enabled=false,router.replicas=1,router.workers=2",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "router.workers > 1 needs a shared Redis" in done.stderr


def test_an_existing_secret_replaces_the_chart_made_one(render_chart: Render) -> None:
    objs = render_chart({"auth": {"existingSecret": "corp-router-auth"}})
    assert not [o for o in objs if o["kind"] == "Secret"]
    router = router_of(objs)
    env = env_items(router)
    assert mounted_file(router, env["INFERFLUX_AUTH_SECRET_FILE"]["value"])[0] == "corp-router-auth"
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "corp-router-auth"


def test_auth_off_is_possible_and_says_it_is_meant(render_chart: Render) -> None:
    env = env_items(router_of(render_chart({"auth": {"enabled": False}})))
    assert env["INFERFLUX_AUTH"]["value"] == "false"
    assert env["INFERFLUX_AUTH_ALLOW_OPEN"]["value"] == "true"


def test_the_admin_api_has_its_own_cluster_ip_service(render_chart: Render) -> None:
    objs = kinds(render_chart({"router": {"service": {"type": "LoadBalancer"}}}))
    public = objs[("Service", "inferflux-system", "inferflux-router")]
    assert [p["port"] for p in public["spec"]["ports"]] == [8000]
    admin = objs[("Service", "inferflux-system", "inferflux-router-admin")]
    assert admin["spec"]["type"] == "ClusterIP"
    assert admin["spec"]["ports"] == [{"name": "admin", "port": 8001, "targetPort": "admin"}]
    assert admin["spec"]["selector"] == public["spec"]["selector"]
    env = env_items(router_of(list(objs.values())))
    assert (env["INFERFLUX_ADMIN_HOST"]["value"], env["INFERFLUX_ADMIN_PORT"]["value"]) == ("0.0.0.0", "8001")


def test_the_bundled_redis_is_locked_down_and_shared_by_the_router(
    render_chart: Render, pod_security: Callable[..., list[str]]
) -> None:
    objs = kinds(render_chart({}))
    redis = objs[("Deployment", "inferflux-system", "inferflux-redis")]
    assert redis["spec"]["replicas"] == 1
    assert pod_security(redis) == []
    spec = redis["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {m["mountPath"]: m["name"] for m in container["volumeMounts"]} == {"/data": "data"}
    assert spec["volumes"] == [{"name": "data", "emptyDir": {}}]
    assert spec["automountServiceAccountToken"] is False
    assert container["args"][-2:] == ["--requirepass", "$(REDIS_PASSWORD)"]
    assert container["env"][0]["valueFrom"]["secretKeyRef"] == {
        "name": "inferflux-router-auth",
        "key": "redis-password",
    }
    env = env_items(router_of(list(objs.values())))
    assert env["INFERFLUX_REDIS_URL"]["value"] == (
        "redis://:$(REDIS_PASSWORD)@inferflux-redis.inferflux-system.svc:6379/0"
    )
    assert list(env).index("REDIS_PASSWORD") < list(env).index("INFERFLUX_REDIS_URL"), "$(VAR) needs it first"
    policy = objs[("NetworkPolicy", "inferflux-system", "inferflux-redis")]
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "egress" not in policy["spec"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": router_of(list(objs.values()))["spec"]["selector"]["matchLabels"]}}
    ]


def test_an_external_redis_replaces_the_bundled_one(render_chart: Render) -> None:
    objs = kinds(render_chart({"redis": {"enabled": False, "url": "rediss://store.corp:6380/1"}}))
    assert ("Deployment", "inferflux-system", "inferflux-redis") not in objs
    assert ("NetworkPolicy", "inferflux-system", "inferflux-redis") not in objs
    env = env_items(router_of(list(objs.values())))
    assert env["INFERFLUX_REDIS_URL"]["value"] == "rediss://store.corp:6380/1"
    assert "REDIS_PASSWORD" not in env


def test_two_replicas_without_a_shared_store_are_refused(helm: Path, repo: Path) -> None:
    chart = str(repo / "helm" / "inferflux")
    done = subprocess.run(
        [str(helm), "template", "x", chart, "--set", "redis.enabled=false"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "router.replicas > 1 needs a shared policy store" in done.stderr
    single = subprocess.run(
        [str(helm), "template", "x", chart, "--set", "redis.enabled=false,router.replicas=1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert single.returncode == 0, single.stderr
    assert "INFERFLUX_REDIS_URL" not in single.stdout


def test_an_external_redis_url_can_come_from_a_secret(render_chart: Render) -> None:
    values = {"redis": {"enabled": False, "urlSecret": {"name": "store-url", "key": "u"}, "port": 6390}}
    objs = render_chart(values)
    env = env_items(router_of(objs))
    assert env["INFERFLUX_REDIS_URL"]["valueFrom"] == {"secretKeyRef": {"name": "store-url", "key": "u"}}
    (policy,) = [
        o for o in objs if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "inferflux-router"
    ]
    ports = [p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]]
    assert 6390 in ports


def test_router_writes_only_tenant_status(render_chart: Render) -> None:
    rules = kinds(render_chart({}))[("Role", "inferflux-system", "inferflux-router-routing")]["rules"]
    writes = [rule for rule in rules if set(rule["verbs"]) - {"get", "list", "watch"}]
    assert writes == [{"apiGroups": ["inferflux.io"], "resources": ["tenants/status"], "verbs": ["patch"]}]


def test_pricing_and_budget_webhook_reach_the_router(render_chart: Render) -> None:
    pricing = {"version": "1", "currency": "EUR", "checksum": "sha256:" + "0" * 64, "models": {}}
    values = {
        "budgets": {"pricing": pricing, "webhook": {"url": "https://hooks.example/b", "secretName": "hook"}}
    }
    objs = kinds(render_chart(values))
    configmap = objs[("ConfigMap", "inferflux-system", "inferflux-pricing")]
    assert yaml.safe_load(configmap["data"]["pricing.yaml"]) == pricing
    spec = objs[("Deployment", "inferflux-system", "inferflux-router")]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert env["INFERFLUX_PRICING_FILE"] == "/etc/inferflux/pricing/pricing.yaml"
    assert env["INFERFLUX_BUDGET_WEBHOOK_URL"] == "https://hooks.example/b"
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert volumes["pricing"]["configMap"]["name"] == "inferflux-pricing"
    assert volumes["budget-webhook"]["secret"]["secretName"] == "hook"
    assert ("ConfigMap", "inferflux-system", "inferflux-pricing") not in kinds(render_chart({}))


def test_budget_alerts_read_the_gauge_the_router_exports(render_chart: Render) -> None:
    rule = kinds(render_chart({"metrics": {"prometheusRule": {"enabled": True}}}))[
        ("PrometheusRule", "inferflux-system", "inferflux")
    ]
    alerts = {r["alert"]: r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]}
    assert "inferflux_router_budget_used_ratio" in alerts["InferFluxBudgetExhausted"]
    assert "inferflux_router_budget_store_unavailable_total" in alerts["InferFluxBudgetStoreUnavailable"]


def test_the_audit_log_is_off_by_default_and_on_with_a_key_the_chart_makes(render_chart: Render) -> None:
    assert "INFERFLUX_AUDIT_DIR" not in env_items(router_of(render_chart({})))
    objs = render_chart({"audit": {"enabled": True, "existingClaim": "audit-rwx"}})
    router = router_of(objs)
    env = env_items(router)
    assert env["INFERFLUX_AUDIT_CHAIN"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    secret = kinds(objs)[("Secret", "inferflux-system", "inferflux-router-audit")]
    key = serialization.load_pem_private_key(base64.b64decode(secret["data"]["signing-key"]), None)
    assert isinstance(key, Ed25519PrivateKey), "the router loads it as its signing key"
    assert len(base64.b64decode(secret["data"]["hmac-secret"])) >= 32
    assert mounted_file(router, env["INFERFLUX_AUDIT_SIGNING_KEY_FILE"]["value"]) == (
        "inferflux-router-audit",
        "signing-key",
    )
    assert mounted_file(router, env["INFERFLUX_AUDIT_SECRET_FILE"]["value"]) == (
        "inferflux-router-audit",
        "hmac-secret",
    )
    spec = router["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == "audit"]
    assert volume["persistentVolumeClaim"]["claimName"] == "audit-rwx"
    (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "audit"]
    assert mount["mountPath"] == env["INFERFLUX_AUDIT_DIR"]["value"]


def test_the_audit_log_can_use_an_existing_secret(render_chart: Render) -> None:
    objs = render_chart({"audit": {"enabled": True, "existingSecret": "corp-audit"}})
    assert ("Secret", "inferflux-system", "inferflux-router-audit") not in kinds(objs)
    router = router_of(objs)
    env = env_items(router)
    assert mounted_file(router, env["INFERFLUX_AUDIT_SIGNING_KEY_FILE"]["value"])[0] == "corp-audit"
    (volume,) = [v for v in router["spec"]["template"]["spec"]["volumes"] if v["name"] == "audit"]
    assert volume == {"name": "audit", "emptyDir": {}}
