"""Scale to zero on the real control plane: a model idles down to 0 and the first request wakes it.

The operator runs as a subprocess under its ServiceAccount (the fixtures of test_operator.py),
with ``INFERFLUX_IDLE_SECONDS_CAP`` shortening every model's ``idleSeconds`` (the CRD keeps its
60 s minimum for users). Real router processes follow the operator's routing ConfigMap and write
their activity and activations with the router's ServiceAccount, bound by the RBAC and the
ValidatingAdmissionPolicy of manifests/base. KWOK plays the kubelet, except that this test
(``KubeletThread``, using test_swap.py's ``Kubelet``) runs the real llama.cpp runtime for each pod
of the served model: the pods are held un-Ready (KWOK's stage annotation) until their runtime
answers, so the routing table never lists an address with nothing behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cluster_fixture import REPO, llamacpp_model, operator_suite

_ops = operator_suite()
admin = _ops.admin
operator_kubeconfig = _ops.operator_kubeconfig
namespace = _ops.namespace
Kube, OperatorProcess, condition, routes, wait_for = (
    _ops.Kube,
    _ops.OperatorProcess,
    _ops.condition,
    _ops.routes,
    _ops.wait_for,
)


def _load(name: str, path: Path) -> Any:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


_swap = _load("inferflux_e2e_test_swap", Path(__file__).with_name("test_swap.py"))
_tenants = _load("inferflux_e2e_test_tenants", Path(__file__).with_name("test_tenants.py"))
RouterProcess = _load(
    "inferflux_tests_router_process", REPO / "tests" / "router" / "router_process.py"
).RouterProcess

IDLE_CAP_SECONDS = 20.0
HOLD = "inferflux.io/e2e-hold-unready"
BASE = REPO / "manifests" / "base"
RBAC = (BASE / "router-rbac.yaml", BASE / "router-activation-rbac.yaml")


@pytest.fixture(scope="module")
def operator(operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The operator, with idle times capped so that a test sees a model scale to zero."""
    process = OperatorProcess(operator_kubeconfig, tmp_path_factory.mktemp("operator-log") / "operator.log")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INFERFLUX_IDLE_SECONDS_CAP", str(IDLE_CAP_SECONDS))
        process.start()
    yield process
    process.stop()
    sys.stdout.write(process.log.read_text(errors="replace")[-5000:])


@pytest.fixture(scope="module")
def router_rbac(admin: Any) -> Iterator[None]:
    """The router's ServiceAccount with the RBAC and admission policy of manifests/base."""
    for path in RBAC:
        admin.run("apply", "-f", str(path))
    yield
    for path in RBAC:
        admin.run("delete", "--ignore-not-found", "--wait=false", "-f", str(path))


class KubeletThread(threading.Thread):
    """Starts the real runtime for every pod of one model, then lets KWOK turn the pod Ready;
    stops it when the pod is gone."""

    def __init__(self, kube: Any, namespace: str, model: str, folder: Path) -> None:
        super().__init__(daemon=True)
        self.kube, self.namespace, self.model = kube, namespace, model
        self.node = _swap.Kubelet(kube, namespace, folder)
        self.stopped = threading.Event()
        self.errors: list[str] = []
        self.started_at: dict[str, float] = {}  # pod name: when its runtime was started
        self.gone: set[str] = set()

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            try:
                self._step()
            except AssertionError as error:  # a pod deleted while starting: seen again next step
                self.errors.append(str(error))

    def _step(self) -> None:
        pods = self.kube.items("pods", self.namespace, f"inferflux.io/model={self.model}")
        alive = {pod["metadata"]["name"] for pod in pods if not pod["metadata"].get("deletionTimestamp")}
        for name in set(self.node.processes) - alive - set(self.gone):
            self.node.kill(name)
            self.gone.add(name)
        for pod in pods:
            name = pod["metadata"]["name"]
            if name in alive and name not in self.node.processes:
                self.started_at[name] = time.monotonic()
                self.node.start(pod)
                self.kube.run("annotate", "pod", name, "-n", self.namespace, f"{HOLD}-")

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=150)
        self.node.stop()


@contextlib.contextmanager
def kubelet_for(kube: Any, namespace: str, model: str, folder: Path) -> Iterator[KubeletThread]:
    thread = KubeletThread(kube, namespace, model, folder)
    thread.start()
    try:
        yield thread
    finally:
        thread.stop()


@contextlib.contextmanager
def router(kubeconfig: Path, folder: Path, **env: str) -> Iterator[Any]:
    """A real router process on the operator's routing ConfigMap, as the router's ServiceAccount."""
    port, admin_port = _ops.free_port(), _ops.free_port()
    settings = {
        "INFERFLUX_ROUTER_PORT": str(port),
        "INFERFLUX_ADMIN_PORT": str(admin_port),
        "INFERFLUX_AUTH": "false",
        "INFERFLUX_ROUTES_CONFIGMAP": "inferflux-system/inferflux-routing",
        "INFERFLUX_KUBECONFIG": str(kubeconfig),
        "INFERFLUX_ACTIVITY_REPORT_SECONDS": "1",
        "INFERFLUX_GUARDRAILS": "false",
        **env,
    }
    process = RouterProcess({**os.environ, **settings}, folder / f"router-{port}.log", "unused")
    asyncio.run(process.start())
    try:
        yield process
    finally:
        asyncio.run(process.stop())


def scaled_to_zero(kube: Any, name: str, namespace: str) -> dict[str, Any] | None:
    """The model once its Deployment runs no pod and its status says so (Ready, ScaledToZero)."""
    model = kube.get("inferencemodel", name, namespace) or {}
    deployments = kube.items("deployments", namespace, f"inferflux.io/model={name}")
    zero = bool(deployments) and all(d["spec"]["replicas"] == 0 for d in deployments)
    ready = condition(model, "Ready")
    if zero and ready.get("status") == "True" and ready.get("reason") == "ScaledToZero":
        return model
    return None


def idle_model(name: str, namespace: str) -> dict[str, Any]:
    """SmolLM2 on llama.cpp, scaling to zero; its pods held un-Ready until a runtime answers."""
    smollm2, _ = _swap._model_files()
    source = {
        "uri": f"file://{smollm2}",
        "sha256": _swap._digest(smollm2),
        "sizeBytes": smollm2.stat().st_size,
    }
    body = llamacpp_model(
        name,
        namespace,
        source=source,
        engineArgs={"contextSize": 512, "parallel": 1, "threads": 1},
        scaleToZero={"enabled": True, "idleSeconds": 60},
    )
    body["metadata"]["annotations"] = {HOLD: "true"}
    return body


def test_an_idle_model_scales_to_zero_and_the_first_request_activates_it(
    admin: Any, operator: Any, router_rbac: None, namespace: str, tmp_path: Path
) -> None:
    kubeconfig = _tenants.router_kubeconfig(admin, tmp_path)
    admin.apply(idle_model("sleepy", namespace))
    with kubelet_for(admin, namespace, "sleepy", tmp_path) as kubelet:
        serving = _ops.wait_ready(admin, "sleepy", namespace)
        assert condition(serving, "Ready")["reason"] == "Serving"

        # Idle: nobody asked for it for the (capped) idle time.
        idle = wait_for("the model to scale to zero", lambda: scaled_to_zero(admin, "sleepy", namespace), 90)
        assert idle["spec"]["replicas"] == 1, "the spec is left alone: no GitOps drift"
        assert _ops.kstatus(idle)["status"] == "Current", "kstatus (Flux, Helm --wait) reads it as healthy"
        wait_for("the table to list no endpoint", lambda: not routes(admin)["models"]["sleepy"]["endpoints"])
        assert routes(admin)["models"]["sleepy"]["scaleToZero"] is True

        with router(kubeconfig, tmp_path, INFERFLUX_ACTIVATION_HOLD_SECONDS="150") as process:
            sent = time.monotonic()
            first_token = None
            text = ""
            chat = {
                "model": "sleepy",
                "messages": [{"role": "user", "content": "Say hello."}],
                "max_tokens": 8,
                "temperature": 0,
                "stream": True,
            }
            url = f"http://127.0.0.1:{process.port}/v1/chat/completions"
            with httpx.stream("POST", url, json=chat, timeout=httpx.Timeout(200.0)) as response:
                assert response.status_code == 200, response.read()
                for line in response.iter_lines():
                    if not line.startswith("data: {"):
                        continue
                    delta = json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                    if delta and first_token is None:
                        first_token = time.monotonic() - sent
                    text += delta
            assert first_token is not None, "the held request was served"
            assert text.strip()

        model = admin.get("inferencemodel", "sleepy", namespace)
        assert "inferflux.io/activate" in model["metadata"]["annotations"], "the router asked for activation"
        assert condition(model, "Ready")["reason"] == "Serving"
        assert [
            d["spec"]["replicas"] for d in admin.items("deployments", namespace, "inferflux.io/model=sleepy")
        ] == [1]
        runtime_start = max(kubelet.started_at.values()) - sent
        sys.stdout.write(
            f"\nscale from zero: first token {first_token:.1f} s after the request "
            f"(the runtime process was started {runtime_start:.1f} s after it)\n"
        )


def test_a_request_held_past_its_activation_timeout_gets_503_with_retry_after(
    admin: Any, operator: Any, router_rbac: None, namespace: str, tmp_path: Path
) -> None:
    kubeconfig = _tenants.router_kubeconfig(admin, tmp_path)
    admin.apply(idle_model("frozen", namespace))  # no runtime behind it: its pods never turn Ready
    wait_for("the model to scale to zero", lambda: scaled_to_zero(admin, "frozen", namespace), 90)
    with router(kubeconfig, tmp_path, INFERFLUX_ACTIVATION_HOLD_SECONDS="3") as process:
        chat = {"model": "frozen", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        reply = httpx.post(f"http://127.0.0.1:{process.port}/v1/chat/completions", json=chat, timeout=60)
    assert reply.status_code == 503
    assert reply.headers["retry-after"] == "1"
    error = reply.json()["error"]
    assert error["code"] == "unavailable"
    assert "no ready replica after 3 s" in error["message"]
    # The activation was asked for all the same: the operator scaled the Deployment back up.
    wait_for(
        "the Deployment to be scaled up",
        lambda: (
            [
                d["spec"]["replicas"]
                for d in admin.items("deployments", namespace, "inferflux.io/model=frozen")
            ]
            == [1]
        ),
    )


async def patch_as(kubeconfig: Path, namespace: str, name: str, body: dict[str, Any]) -> tuple[int, str]:
    """A merge patch of an InferenceModel with ``kubeconfig``'s identity, as the router sends it (no
    GET first, which the router may not do); the HTTP status and the API server's message."""
    from kubernetes_asyncio import client, config
    from kubernetes_asyncio.client.exceptions import ApiException

    api_client = await config.new_client_from_config(config_file=str(kubeconfig))
    try:
        api = client.CustomObjectsApi(api_client)
        await api.patch_namespaced_custom_object(
            "inferflux.io", "v1alpha1", namespace, "inferencemodels", name, body,
            _content_type="application/merge-patch+json",
        )  # fmt: skip
        return 200, ""
    except ApiException as error:
        return error.status, json.loads(error.body).get("message", "")
    finally:
        await api_client.close()


def test_the_router_may_write_its_annotations_and_nothing_else(
    admin: Any, router_rbac: None, namespace: str, tmp_path: Path
) -> None:
    admin.apply(llamacpp_model("guarded", namespace))
    kubeconfig = _tenants.router_kubeconfig(admin, tmp_path)

    def patch(body: dict[str, Any]) -> tuple[int, str]:
        return asyncio.run(patch_as(kubeconfig, namespace, "guarded", body))

    ours = {"inferflux.io/activate": "1767225600.000", "inferflux.io/in-flight.router-a": "2 1767225600"}
    assert patch({"metadata": {"annotations": ours}}) == (200, "")
    assert patch({"metadata": {"annotations": {"inferflux.io/in-flight.router-a": None}}}) == (200, "")
    model = admin.get("inferencemodel", "guarded", namespace)
    assert model["metadata"]["annotations"]["inferflux.io/activate"] == "1767225600.000"
    for forbidden, says in (
        ({"spec": {"replicas": 5}}, "never change its spec"),
        ({"metadata": {"annotations": {"team.example/owner": "router"}}}, "may change only"),
        ({"metadata": {"labels": {"team": "router"}}}, "labels"),
        ({"metadata": {"finalizers": ["router.example/keep"]}}, "finalizers"),
    ):
        status, message = patch(forbidden)
        assert status in (403, 422), message
        assert says in message
    model = admin.get("inferencemodel", "guarded", namespace)
    assert model["spec"]["replicas"] == 1
    assert "team.example/owner" not in model["metadata"].get("annotations", {})
    who = "system:serviceaccount:inferflux-system:inferflux-router"
    for verb, *extra in (("delete",), ("get",), ("patch", "--subresource=status")):
        can = admin.run(
            "auth", "can-i", verb, "inferencemodels", *extra, "--as", who, "-n", namespace, check=False
        )
        assert can.strip() == "no", f"{verb} {extra}"


def test_the_operators_scaler_follows_the_reported_in_flight_count(
    admin: Any, operator: Any, namespace: str
) -> None:
    policy = {"enabled": True, "minReplicas": 1, "maxReplicas": 3, "targetInFlightPerReplica": 2}
    admin.apply(llamacpp_model("busy", namespace, autoscaling={**policy, "scaleDownDelaySeconds": 0}))
    _ops.wait_ready(admin, "busy", namespace)

    def replicas() -> list[int]:
        return [
            d["spec"]["replicas"] for d in admin.items("deployments", namespace, "inferflux.io/model=busy")
        ]

    assert replicas() == [1]
    # Two routers report 3 and 2 requests in flight (what router/activation.py writes): ceil(5 / 2) = 3.
    now = f"{time.time():.0f}"
    reports = [f"inferflux.io/in-flight.router-a=3 {now}", f"inferflux.io/in-flight.router-b=2 {now}"]
    admin.run("annotate", "inferencemodel", "busy", "-n", namespace, *reports)
    wait_for("three replicas", lambda: replicas() == [3])
    model = _ops.wait_ready(admin, "busy", namespace)
    assert model["spec"]["replicas"] == 1, "the scaler leaves the spec alone"
    # The load is gone (each router removes its key): back to the minimum, the delay being 0.
    admin.run("annotate", "inferencemodel", "busy", "-n", namespace, "inferflux.io/in-flight.router-a-")
    admin.run("annotate", "inferencemodel", "busy", "-n", namespace, "inferflux.io/in-flight.router-b-")
    wait_for("one replica again", lambda: replicas() == [1])
