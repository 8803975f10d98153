"""The local control plane itself, and the CRDs on it.

These tests pin down what the other e2e tests rely on: the real API server validates the CRDs
and the invalid samples, prints the columns users see, enforces RBAC and Pod Security; the
controller manager runs Deployments, EndpointSlices and the garbage collector; KWOK makes pods
Ready, or holds them un-Ready or fails them on request (``e2e/stages/pod.yaml``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster_fixture import POD_CIDR, REPO, KubeAccess, LocalCluster

CRDS = sorted((REPO / "crds").glob("*.yaml"))
INVALID = sorted((REPO / "docs" / "examples" / "invalid").glob("*.yaml"))
VALID_MODEL = REPO / "docs" / "examples" / "llamacpp-model.yaml"
EXPECTED_ERROR = "inferflux.io/expected-error"
HOLD_UNREADY = "inferflux.io/e2e-hold-unready"
FAIL = "inferflux.io/e2e-fail"
CRASHLOOP = "inferflux.io/e2e-crashloop"


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 30) -> Any:
    """Poll ``probe`` every 0.2 s until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def apply(kube: KubeAccess, *docs: dict[str, Any], namespace: str | None = None) -> None:
    ns = ["-n", namespace] if namespace else []
    kube.kubectl("apply", "--server-side", *ns, "-f", "-", input=yaml.safe_dump_all(docs))


def get(kube: KubeAccess, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    out = kube.kubectl("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found").stdout
    return json.loads(out) if out.strip() else None


def items(kube: KubeAccess, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = kube.kubectl_json("get", kind, "-n", namespace, "-l", selector)["items"]
    return found


def condition(obj: dict[str, Any], type_: str) -> str | None:
    for cond in obj.get("status", {}).get("conditions", []):
        if cond["type"] == type_:
            return str(cond["status"])
    return None


def restricted_container(name: str = "app") -> dict[str, Any]:
    """A container the ``restricted`` Pod Security profile admits."""
    return {
        "name": name,
        "image": "registry.invalid/inferflux/e2e:never-pulled",
        "ports": [{"containerPort": 8080, "name": "http"}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def pod(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"restartPolicy": "Never", "containers": [restricted_container()]},
    }


def deployment(name: str, replicas: int, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations or {}},
                "spec": {"containers": [restricted_container()]},
            },
        },
    }


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }


def endpoints_of(kube: KubeAccess, name: str, namespace: str) -> list[dict[str, Any]]:
    slices = items(kube, "endpointslices", namespace, f"kubernetes.io/service-name={name}")
    return [endpoint for s in slices for endpoint in s.get("endpoints") or []]


# --------------------------------------------------------------------------------------------
# The control plane.


def test_kubectl_version_reports_the_pinned_release(kube: KubeAccess, kube_cluster: LocalCluster) -> None:
    pinned = re.search(
        r"^\s*k8s\.io/kubernetes (v\S+)", (REPO / "e2e/cluster/go.mod").read_text(), re.MULTILINE
    )
    assert pinned, "k8s.io/kubernetes is not required in e2e/cluster/go.mod"
    versions = kube.kubectl_json("version")
    assert versions["serverVersion"]["gitVersion"] == pinned.group(1), "stale binaries: make cluster-bin"
    assert versions["clientVersion"]["gitVersion"] == pinned.group(1)
    assert kube_cluster.kube_version == pinned.group(1)


def test_a_second_cluster_starts_and_stops_within_budget_leaving_nothing() -> None:
    """The fixture's contract: up in < 60 s, down in < 10 s, no process and no folder left."""
    cluster = LocalCluster()
    try:
        cluster.start()
        groups = [c.process.pid for c in cluster.components if c.process]
        assert len(groups) == 5
    finally:
        began = time.monotonic()
        cluster.stop()
        down = time.monotonic() - began
    print(f"local control plane: up in {cluster.startup_seconds:.1f} s, down in {down:.1f} s")
    assert cluster.startup_seconds < 60
    assert down < 10
    assert not cluster.workdir.exists()
    for group in groups:
        with pytest.raises(ProcessLookupError):
            os.killpg(group, 0)


def test_the_python_client_and_helm_work(kube: KubeAccess) -> None:
    from kubernetes import client

    nodes = client.CoreV1Api(kube.api_client).list_node().items
    assert [n.metadata.name for n in nodes] == ["kwok-node-0"]
    assert kube.helm("version", "--short").stdout.startswith("v3.")


def test_a_pod_turns_ready_fast_with_an_ip(kube: KubeAccess, restricted_namespace: str) -> None:
    ns = restricted_namespace
    began = time.monotonic()
    apply(kube, pod("quick"), namespace=ns)
    ready = wait_for(
        "pod quick Ready", lambda: condition(get(kube, "pod", "quick", ns) or {}, "Ready") == "True"
    )
    elapsed = time.monotonic() - began
    assert ready
    assert elapsed < 5, f"scheduling + KWOK readiness took {elapsed:.1f} s"
    status = (get(kube, "pod", "quick", ns) or {})["status"]
    assert status["phase"] == "Running"
    assert ipaddress.ip_address(status["podIP"]) in ipaddress.ip_network(POD_CIDR)


def test_a_deployment_gets_ready_pods_and_endpoint_slices(
    kube: KubeAccess, restricted_namespace: str
) -> None:
    ns = restricted_namespace
    apply(kube, deployment("web", 2), service("web"), namespace=ns)
    kube.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s")
    pods = items(kube, "pods", ns, "app=web")
    assert len(pods) == 2
    assert all(condition(p, "Ready") == "True" for p in pods)
    pod_ips = {p["status"]["podIP"] for p in pods}
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network(POD_CIDR) for ip in pod_ips)

    def ready_addresses() -> set[str]:
        return {
            address
            for endpoint in endpoints_of(kube, "web", ns)
            if endpoint["conditions"].get("ready")
            for address in endpoint["addresses"]
        }

    wait_for("the EndpointSlice to list both pods", lambda: ready_addresses() == pod_ips)


def test_a_held_pod_stays_unready_until_released(kube: KubeAccess, restricted_namespace: str) -> None:
    ns = restricted_namespace
    apply(kube, deployment("held", 1, {HOLD_UNREADY: "true"}), service("held"), namespace=ns)
    [held] = wait_for(
        "the held pod to run",
        lambda: [p for p in items(kube, "pods", ns, "app=held") if p["status"].get("phase") == "Running"],
    )
    name = held["metadata"]["name"]
    assert condition(held, "Ready") == "False"
    assert held["status"]["podIP"]
    time.sleep(3)  # well past KWOK's readiness delay: still un-Ready
    assert condition(get(kube, "pod", name, ns) or {}, "Ready") == "False"
    deploy = get(kube, "deployment", "held", ns) or {}
    assert deploy["status"].get("availableReplicas", 0) == 0
    assert [e["conditions"]["ready"] for e in endpoints_of(kube, "held", ns)] == [False]

    kube.kubectl("annotate", "pod", name, "-n", ns, f"{HOLD_UNREADY}-")
    wait_for(
        "the released pod to turn Ready",
        lambda: condition(get(kube, "pod", name, ns) or {}, "Ready") == "True",
    )


def test_a_ready_pod_annotated_to_hold_turns_unready(kube: KubeAccess, restricted_namespace: str) -> None:
    ns = restricted_namespace
    apply(kube, pod("flaky"), namespace=ns)
    wait_for("pod flaky Ready", lambda: condition(get(kube, "pod", "flaky", ns) or {}, "Ready") == "True")
    kube.kubectl("annotate", "pod", "flaky", "-n", ns, f"{HOLD_UNREADY}=true")
    wait_for("pod flaky un-Ready", lambda: condition(get(kube, "pod", "flaky", ns) or {}, "Ready") == "False")


def test_pods_fail_or_crash_loop_on_request(kube: KubeAccess, restricted_namespace: str) -> None:
    ns = restricted_namespace
    apply(kube, pod("failing", {FAIL: "true"}), pod("looping", {CRASHLOOP: "true"}), namespace=ns)
    failed = wait_for(
        "pod failing Failed",
        lambda: (p := get(kube, "pod", "failing", ns)) and p["status"].get("phase") == "Failed" and p,
    )
    assert failed["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1

    def waiting_reason() -> str | None:
        statuses = (get(kube, "pod", "looping", ns) or {}).get("status", {}).get("containerStatuses") or []
        return statuses[0].get("state", {}).get("waiting", {}).get("reason") if statuses else None

    wait_for("pod looping in CrashLoopBackOff", lambda: waiting_reason() == "CrashLoopBackOff")
    looping = get(kube, "pod", "looping", ns) or {}
    assert looping["status"]["phase"] == "Running"
    assert condition(looping, "Ready") == "False"


def test_the_garbage_collector_follows_owner_references(kube: KubeAccess, restricted_namespace: str) -> None:
    ns = restricted_namespace
    apply(kube, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}, namespace=ns)
    owner = get(kube, "configmap", "owner", ns) or {}
    reference = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "dependent", "ownerReferences": [reference]},
    }
    apply(kube, dependent, namespace=ns)
    kube.kubectl("delete", "configmap", "owner", "-n", ns)
    wait_for(
        "the dependent ConfigMap to be collected", lambda: get(kube, "configmap", "dependent", ns) is None
    )


def test_restricted_namespaces_reject_privileged_pods(kube: KubeAccess, restricted_namespace: str) -> None:
    privileged = pod("root")
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    done = kube.kubectl(
        "apply", "-n", restricted_namespace, "-f", "-", input=json.dumps(privileged), check=False
    )
    assert done.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in done.stderr


def test_service_accounts_get_only_what_rbac_grants(
    kube: KubeAccess, service_account_kube: Callable[[str, str], KubeAccess]
) -> None:
    ns = "rbac-probe"
    account = service_account_kube(ns, "reader")
    assert account.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout == (
        f"system:serviceaccount:{ns}:reader"
    )
    denied = account.kubectl("get", "pods", "-n", ns, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr

    kube.kubectl("create", "role", "pod-reader", "-n", ns, "--verb=get,list", "--resource=pods")
    kube.kubectl(
        "create", "rolebinding", "reader", "-n", ns, "--role=pod-reader", f"--serviceaccount={ns}:reader"
    )
    wait_for(
        "RBAC to allow listing pods",
        lambda: account.kubectl("get", "pods", "-n", ns, check=False).returncode == 0,
    )
    assert account.kubectl("get", "pods", "-n", "default", check=False).returncode != 0
    assert account.kubectl("get", "secrets", "-n", ns, check=False).returncode != 0


# --------------------------------------------------------------------------------------------
# The CRDs.


@pytest.fixture(scope="module")
def crds(kube: KubeAccess) -> list[Path]:
    """Every crds/*.yaml applied server-side and Established."""
    assert len(CRDS) >= 2, f"expected the InferenceModel and Prompt CRDs in crds/, found {CRDS}"
    for path in CRDS:
        kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    names = [f"crd/{yaml.safe_load(p.read_text())['metadata']['name']}" for p in CRDS]
    kube.kubectl("wait", "--for=condition=Established", "--timeout=30s", *names)
    return CRDS


def test_the_crds_apply_and_are_established(kube: KubeAccess, crds: list[Path]) -> None:
    resources = kube.kubectl("api-resources", "--api-group=inferflux.io", "-o", "name").stdout.split()
    assert {"inferencemodels.inferflux.io", "prompts.inferflux.io"} <= set(resources)


@pytest.mark.parametrize("sample", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_samples_are_rejected_with_their_message(
    kube: KubeAccess, crds: list[Path], sample: Path
) -> None:
    expected = yaml.safe_load(sample.read_text())["metadata"]["annotations"][EXPECTED_ERROR]
    done = kube.kubectl("create", "--dry-run=server", "-n", "default", "-f", str(sample), check=False)
    assert done.returncode != 0, f"{sample.name} was accepted"
    assert expected in done.stderr


def test_invalid_samples_exist() -> None:
    assert INVALID, "docs/examples/invalid/*.yaml: no invalid samples to check"


@pytest.mark.parametrize("resource", ["inferencemodels", "im"])
def test_kubectl_get_prints_the_columns(kube: KubeAccess, crds: list[Path], resource: str) -> None:
    ns = "printer-columns"
    kube.kubectl("create", "namespace", ns, check=False)
    kube.kubectl("apply", "--server-side", "-n", ns, "-f", str(VALID_MODEL))
    out = kube.kubectl("get", resource, "-n", ns).stdout
    header = out.splitlines()[0].split()
    assert {"READY", "STATUS", "ENGINE", "ACTIVE", "AGE"} <= set(header), out
    name = yaml.safe_load(VALID_MODEL.read_text())["metadata"]["name"]
    assert out.splitlines()[1].split()[0] == name


def test_custom_resources_own_what_the_garbage_collector_collects(
    kube: KubeAccess, crds: list[Path], restricted_namespace: str
) -> None:
    ns = restricted_namespace
    kube.kubectl("apply", "--server-side", "-n", ns, "-f", str(VALID_MODEL))
    model = yaml.safe_load(VALID_MODEL.read_text())["metadata"]["name"]
    uid = kube.kubectl("get", "im", model, "-n", ns, "-o", "jsonpath={.metadata.uid}").stdout
    owned = deployment("owned", 1)
    owned["metadata"]["ownerReferences"] = [
        {"apiVersion": "inferflux.io/v1alpha1", "kind": "InferenceModel", "name": model, "uid": uid}
    ]
    apply(kube, owned, namespace=ns)
    kube.kubectl("rollout", "status", "deployment/owned", "-n", ns, "--timeout=60s")
    kube.kubectl("delete", "im", model, "-n", ns)
    wait_for("the owned Deployment to be collected", lambda: get(kube, "deployment", "owned", ns) is None)
    wait_for("its pods to be collected", lambda: not items(kube, "pods", ns, "app=owned"))
