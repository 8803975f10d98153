"""The operator on a real control plane, under its own ServiceAccount and the RBAC from manifests/.

Acceptance of issue 4: applying an InferenceModel creates its owned Deployment, Service, Secret and
NetworkPolicy; KWOK makes the pods Ready and ``kubectl get`` shows it; spec changes roll out and
advance observedGeneration; a restart converges without duplicates; terminal spec errors end
Stalled with a reason ``kubectl describe`` shows; deletion garbage-collects everything; the pods
are admitted in a namespace that enforces the restricted Pod Security profile.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster_fixture import llamacpp_model, provider_model
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

REPO = Path(__file__).resolve().parents[1]
OPERATOR_NS = "inferflux-system"
OPERATOR_SA = "inferflux-operator"
TIMEOUT = 60.0


def kubectl_binary() -> str:
    built = REPO / ".cache" / "cluster-bin" / "kubectl"
    return str(built) if built.exists() else shutil.which("kubectl") or "kubectl"


class Kube:
    """kubectl against one kubeconfig: what a user (or the operator's identity) would run."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        done = subprocess.run(
            [kubectl_binary(), "--kubeconfig", str(self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def apply(self, *docs: dict[str, Any]) -> None:
        self.run("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(docs))

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        out = self.run(
            "get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found", "--show-managed-fields"
        )
        return json.loads(out) if out.strip() else None

    def items(self, kind: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        args = ["get", kind, "-n", namespace, "-o", "json"] + (["-l", selector] if selector else [])
        items: list[dict[str, Any]] = json.loads(self.run(*args))["items"]
        return items


def wait_for(what: str, probe: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for c in (obj or {}).get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return dict(c)
    return {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class OperatorProcess:
    """``python -m inferflux.operator`` as a subprocess, authenticated as its ServiceAccount."""

    def __init__(self, kubeconfig: Path, log: Path) -> None:
        self.kubeconfig = kubeconfig
        self.log = log
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "INFERFLUX_OPERATOR_NAMESPACE": OPERATOR_NS,
            "INFERFLUX_HEALTH_PORT": str(self.port),
            "INFERFLUX_RUNTIME_IMAGE": "ghcr.io/inferflux/runtime:e2e",
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "inferflux.operator"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for("the operator's liveness endpoint", self.alive, timeout=30)

    def alive(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@pytest.fixture(scope="module")
def admin(admin_kubeconfig: Path) -> Iterator[Kube]:
    """The cluster as its admin, with the CRDs and the operator's RBAC from manifests/ installed.

    The RBAC is removed afterwards: the cluster is shared by the whole session, and a Helm release
    of the chart (``test_delivery``) cannot adopt objects the plain manifests created.
    """
    kube = Kube(admin_kubeconfig)
    base = REPO / "manifests" / "base"
    for path in sorted((REPO / "crds").glob("*.yaml")):
        kube.run("apply", "--server-side", "--force-conflicts", "-f", str(path))
    kube.run("apply", "-f", str(base / "namespace.yaml"), "-f", str(base / "operator-rbac.yaml"))
    kube.run(
        "wait",
        "--for=condition=Established",
        "crd/inferencemodels.inferflux.io",
        "crd/prompts.inferflux.io",
        "crd/tenants.inferflux.io",
    )
    yield kube
    kube.run("delete", "--ignore-not-found", "--wait=false", "-f", str(base / "operator-rbac.yaml"))


@pytest.fixture(scope="module")
def operator_kubeconfig(admin: Kube, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig holding a token of the operator's ServiceAccount (not admin)."""
    token = admin.run("create", "token", OPERATOR_SA, "-n", OPERATOR_NS, "--duration", "2h").strip()
    config = yaml.safe_load(admin.kubeconfig.read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])["context"]
    cluster = next(c for c in config["clusters"] if c["name"] == context["cluster"])
    sa_config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": OPERATOR_SA, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": cluster["name"], "user": OPERATOR_SA}}],
        "current-context": "operator",
    }
    path = tmp_path_factory.mktemp("operator") / "kubeconfig"
    path.write_text(yaml.safe_dump(sa_config))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def operator(
    operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The running operator; its log is printed when a test of this module fails."""
    process = OperatorProcess(operator_kubeconfig, tmp_path_factory.mktemp("operator-log") / "operator.log")
    process.start()
    yield process
    process.stop()
    sys.stdout.write(process.log.read_text(errors="replace")[-5000:])


@pytest.fixture
def namespace(restricted_namespace: str) -> str:
    """A fresh namespace enforcing Pod Security "restricted" (from e2e/conftest.py)."""
    return restricted_namespace


def wait_condition(
    kube: Kube, kind: str, name: str, namespace: str, type_: str = "Ready", status: str = "True"
) -> dict[str, Any]:
    """Wait until the object's ``type_`` condition has ``status``; returns the object."""

    def reached() -> dict[str, Any] | None:
        obj = kube.get(kind, name, namespace)
        return obj if condition(obj, type_).get("status") == status else None

    result: dict[str, Any] = wait_for(f"{kind} {namespace}/{name} {type_}={status}", reached)
    return result


def wait_ready(kube: Kube, name: str, namespace: str) -> dict[str, Any]:
    return wait_condition(kube, "inferencemodel", name, namespace)


def routes(kube: Kube) -> dict[str, Any]:
    cm = kube.get("configmap", "inferflux-routing", OPERATOR_NS)
    table: dict[str, Any] = json.loads(cm["data"]["routes.json"]) if cm else {"models": {}}
    return table


def test_operator_identity_is_least_privilege(admin: Kube) -> None:
    who = f"system:serviceaccount:{OPERATOR_NS}:{OPERATOR_SA}"
    assert admin.run("auth", "can-i", "create", "deployments", "--as", who, "-n", "default").strip() == "yes"
    assert admin.run("auth", "can-i", "list", "secrets", "--as", who, check=False).strip() == "no"
    assert admin.run("auth", "can-i", "create", "pods", "--as", who, check=False).strip() == "no"


def test_model_gets_owned_workload_admitted_as_restricted_and_ready(
    admin: Kube, operator: OperatorProcess, namespace: str
) -> None:
    admin.apply(llamacpp_model("gemma", namespace))
    model = wait_ready(admin, "gemma", namespace)
    uid = model["metadata"]["uid"]
    for kind, name in [
        ("deployment", f"gemma-{model['status']['activeRevision']}"),  # one Deployment per revision
        ("service", "gemma"),
        ("secret", "gemma-admin-token"),
        ("networkpolicy", "gemma-runtime"),
    ]:
        obj = admin.get(kind, name, namespace)
        assert obj is not None, f"{kind}/{name} missing"
        (owner,) = obj["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"], owner["controller"]) == ("InferenceModel", uid, True)
        assert "inferflux-operator" in {f["manager"] for f in obj["metadata"]["managedFields"]}
    (pod,) = admin.items("pods", namespace, "inferflux.io/model=gemma")
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True  # admitted under enforce=restricted
    status = model["status"]
    assert status["observedGeneration"] == model["metadata"]["generation"]
    assert (status["readyReplicas"], status["endpoint"]) == (1, f"http://gemma.{namespace}.svc:8080")
    assert status["activeRevision"] == pod["metadata"]["labels"]["inferflux.io/revision"]
    table = admin.run("get", "inferencemodels", "-n", namespace)
    header, row = table.splitlines()[:2]
    assert header.split()[:3] == ["NAME", "READY", "STATUS"]
    assert row.split()[:4] == ["gemma", "True", "Serving", "llamacpp"]
    events = admin.run("describe", "inferencemodel", "gemma", "-n", namespace)
    assert "Serving" in events.split("Events:")[1]
    route = wait_for(
        "the routing table entry", lambda: routes(admin)["models"].get("gemma", {}).get("endpoints")
    )
    assert route == [
        {
            "url": f"http://{pod['status']['podIP']}:8080",
            "pod": pod["metadata"]["name"],
            "revision": status["activeRevision"],
        }
    ]
    assert operator.alive()


def test_spec_change_advances_generation_and_rolls_out(
    admin: Kube, operator: OperatorProcess, namespace: str
) -> None:
    admin.apply(llamacpp_model("roll", namespace))
    before = wait_ready(admin, "roll", namespace)
    admin.run(
        "patch",
        "inferencemodel",
        "roll",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"engineArgs":{"contextSize":null,"threads":2}}}',
    )

    def rolled() -> dict[str, Any] | None:
        model = admin.get("inferencemodel", "roll", namespace) or {}
        status = model.get("status", {})
        done = (
            status.get("observedGeneration") == 2
            and status.get("activeRevision") != before["status"]["activeRevision"]
        )
        settled = condition(model, "Progressing").get("reason") == "RolloutComplete"  # the old one drained
        ready = condition(model, "Ready")["status"] == "True"
        return model if done and settled and ready and not status.get("candidateRevision") else None

    after = wait_for("the new revision to become active and the old one to drain", rolled)
    assert len(admin.items("deployments", namespace, "inferflux.io/model=roll")) == 1
    assert after["metadata"]["generation"] == 2
    assert condition(after, "Progressing")["reason"] == "RolloutComplete"
    revision = after["status"]["activeRevision"]
    deployment = admin.get("deployment", f"roll-{revision}", namespace) or {}
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["INFERFLUX_THREADS"] == "2"
    assert "INFERFLUX_CONTEXT_SIZE" not in env  # a setting dropped from the spec is removed
    wait_for(
        "the routing table to list only the new revision",
        lambda: (
            {e["revision"] for e in routes(admin)["models"].get("roll", {}).get("endpoints", [])}
            == {revision}
        ),
    )


def test_restart_mid_way_creates_no_duplicates(
    admin: Kube, operator: OperatorProcess, namespace: str
) -> None:
    admin.apply(llamacpp_model("restart-a", namespace))
    wait_for(
        "the first Deployment", lambda: admin.items("deployments", namespace, "inferflux.io/model=restart-a")
    )
    operator.stop()
    admin.apply(llamacpp_model("restart-b", namespace), llamacpp_model("restart-a", namespace, replicas=2))
    operator.start()
    for name, replicas in (("restart-a", 2), ("restart-b", 1)):
        wait_ready(admin, name, namespace)
        wait_for(
            f"{name} at {replicas} replicas",
            lambda n=name, r=replicas: (
                (admin.get("inferencemodel", n, namespace) or {}).get("status", {}).get("readyReplicas") == r
            ),
        )
        model = admin.get("inferencemodel", name, namespace) or {}
        assert model["status"]["observedGeneration"] == model["metadata"]["generation"]
    deployments = admin.items("deployments", namespace, "app.kubernetes.io/managed-by=inferflux-operator")
    assert sorted(d["metadata"]["labels"]["inferflux.io/model"] for d in deployments) == [
        "restart-a",
        "restart-b",
    ]
    services = admin.items("services", namespace, "app.kubernetes.io/managed-by=inferflux-operator")
    assert len(services) == 2


def test_terminal_spec_errors_stall_with_a_readable_reason(
    admin: Kube, operator: OperatorProcess, namespace: str
) -> None:
    provider = provider_model("remote", namespace, secret="creds", key="api-key")
    bad_flag = llamacpp_model("badflag", namespace, engineArgs={"extraArgs": ["--listen-everywhere"]})
    admin.apply(provider, bad_flag)
    for name, reason, words in (
        ("remote", "SecretNotFound", "creds not found"),
        ("badflag", "UnsupportedEngineOption", "--listen-everywhere"),
    ):
        model = wait_condition(admin, "inferencemodel", name, namespace, "Stalled", "True")
        assert condition(model, "Stalled")["reason"] == reason
        assert condition(model, "Ready")["status"] == "False"
        described = admin.run("describe", "inferencemodel", name, "-n", namespace)
        assert reason in described
        assert words in described
    assert not admin.items("deployments", namespace, "inferflux.io/model=badflag")  # nothing rolled out
    admin.run("create", "secret", "generic", "creds", "-n", namespace, "--from-literal=api-key=sk-e2e")
    recovered = wait_ready(admin, "remote", namespace)
    assert condition(recovered, "Stalled")["status"] == "False"
    assert routes(admin)["models"]["remote"]["provider"]["apiKeySecretRef"] == {
        "name": "creds",
        "key": "api-key",
    }
    assert "sk-e2e" not in json.dumps(routes(admin))


def test_a_bad_signature_stalls_and_the_signed_revision_keeps_serving(
    admin: Kube, operator: OperatorProcess, namespace: str
) -> None:
    publisher = Ed25519PrivateKey.generate()
    public = base64.b64encode(publisher.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    admin.run("create", "secret", "generic", "signing", "-n", namespace, f"--from-literal=pub={public}")

    def signed(digest: str, signs: str) -> dict[str, Any]:
        signature = {
            "value": base64.b64encode(publisher.sign(f"sha256:{signs}".encode())).decode(),
            "publicKeySecretRef": {"name": "signing", "key": "pub"},
        }
        uri = f"file://models/{digest[:8]}.gguf"
        return llamacpp_model(
            "signed", namespace, source={"uri": uri, "sha256": digest, "signature": signature}
        )

    good, other = "a" * 64, "b" * 64
    admin.apply(signed(good, signs=good))
    serving = wait_ready(admin, "signed", namespace)
    active = serving["status"]["activeRevision"]
    wait_for(
        "the signed revision's route", lambda: routes(admin)["models"].get("signed", {}).get("endpoints")
    )

    admin.apply(signed(other, signs=good))  # a signature over another digest: forged for this one
    stalled = wait_condition(admin, "inferencemodel", "signed", namespace, "Stalled", "True")
    assert condition(stalled, "Stalled")["reason"] == "SignatureInvalid"
    assert "does not match sha256:bbbbbbbbbbbb" in condition(stalled, "Stalled")["message"]
    assert stalled["status"]["activeRevision"] == active
    revisions = {
        d["metadata"]["labels"]["inferflux.io/revision"]
        for d in admin.items("deployments", namespace, "inferflux.io/model=signed")
    }
    assert revisions == {active}, "no Deployment was made for the unverified weights"
    route = routes(admin)["models"]["signed"]
    assert route["revision"] == active
    assert route["endpoints"], "the signed revision keeps serving"


def kstatus(obj: dict[str, Any]) -> dict[str, str]:
    """The verdict of sigs.k8s.io/cli-utils' kstatus (Flux, Helm 4 --wait) on one live object."""
    binary = REPO / ".cache" / "kstatus-bin" / "kstatus"
    assert binary.exists(), "run `make kstatus-bin`"
    run = subprocess.run(
        [str(binary)], input=json.dumps(obj), capture_output=True, text=True, timeout=30, check=True
    )
    verdict: dict[str, str] = json.loads(run.stdout)
    return verdict


def test_kstatus_reads_ready_progressing_and_stalled_models(
    admin: Kube, operator: OperatorProcess, namespace: str
) -> None:
    unready = llamacpp_model("ks-progressing", namespace)
    unready["metadata"]["annotations"] = {"inferflux.io/e2e-hold-unready": "true"}
    admin.apply(
        llamacpp_model("ks-ready", namespace),
        unready,
        llamacpp_model("ks-stalled", namespace, engineArgs={"extraArgs": ["--listen-everywhere"]}),
    )
    wait_ready(admin, "ks-ready", namespace)
    verdicts: list[dict[str, str]] = []

    def read_current() -> bool:
        # Polled: a loaded machine once showed the object Ready a moment before its status had
        # observed the latest generation, which kstatus rightly reads as InProgress.
        verdicts.append(kstatus(admin.get("inferencemodel", "ks-ready", namespace) or {}))
        return verdicts[-1]["status"] == "Current"

    try:
        wait_for("kstatus to read ks-ready Current", read_current, timeout=60)
    except AssertionError as error:
        raise AssertionError(f"{error}; last verdict: {verdicts[-1:]}") from None

    def observed_progressing() -> dict[str, Any] | None:
        obj = admin.get("inferencemodel", "ks-progressing", namespace) or {}
        seen = obj.get("status", {}).get("observedGeneration") == obj.get("metadata", {}).get("generation")
        return obj if seen and condition(obj, "Progressing").get("status") == "True" else None

    progressing = wait_for("ks-progressing observed and Progressing", observed_progressing)
    assert kstatus(progressing)["status"] == "InProgress"

    stalled = wait_condition(admin, "inferencemodel", "ks-stalled", namespace, "Stalled", "True")
    verdict = kstatus(stalled)
    assert verdict["status"] == "Failed"
    assert "--listen-everywhere" in verdict["message"]


def helm4_install(admin: Kube, tmp_path: Path, release: str, model: dict[str, Any], timeout: str) -> Any:
    """``helm install --wait`` (Helm 4: kstatus on every resource) of a chart holding ``model``."""
    binary = REPO / ".cache" / "helm4-bin" / "helm"
    assert binary.exists(), "run `make helm4-bin`"
    chart = tmp_path / release
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {release}\nversion: 0.1.0\n")
    (chart / "templates" / "model.yaml").write_text(yaml.safe_dump(model))
    home = tmp_path / "helm-home"
    env = {
        **os.environ,
        "KUBECONFIG": str(admin.kubeconfig),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    namespace = model["metadata"]["namespace"]
    command = [str(binary), "install", release, str(chart), "-n", namespace, "--wait", "--timeout", timeout]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_helm_4_install_wait_reads_model_health(
    admin: Kube, operator: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    ready = helm4_install(admin, tmp_path, "h-ready", llamacpp_model("h-ready", namespace), "120s")
    assert ready.returncode == 0, ready.stderr
    model = admin.get("inferencemodel", "h-ready", namespace)
    assert condition(model, "Ready")["status"] == "True", "--wait returned only once the model was Ready"

    bad_flag = llamacpp_model("h-stalled", namespace, engineArgs={"extraArgs": ["--listen-everywhere"]})
    stalled = helm4_install(admin, tmp_path, "h-stalled", bad_flag, "20s")
    assert stalled.returncode != 0, "a Stalled model must not pass helm's --wait"
    assert "h-stalled" in stalled.stderr


def test_deleting_the_model_garbage_collects_everything(
    admin: Kube, operator: OperatorProcess, namespace: str
) -> None:
    admin.apply(llamacpp_model("doomed", namespace))
    wait_ready(admin, "doomed", namespace)
    admin.run("delete", "inferencemodel", "doomed", "-n", namespace, "--timeout=30s")
    wait_for(
        "the Deployments to be collected",
        lambda: not admin.items("deployments", namespace, "inferflux.io/model=doomed"),
    )
    for kind, name in [
        ("service", "doomed"),
        ("secret", "doomed-admin-token"),
        ("networkpolicy", "doomed-runtime"),
    ]:
        wait_for(f"{kind}/{name} to be collected", lambda k=kind, n=name: admin.get(k, n, namespace) is None)
    wait_for("the pods to go", lambda: not admin.items("pods", namespace, "inferflux.io/model=doomed"))
    wait_for("the route to go", lambda: "doomed" not in routes(admin)["models"])


def test_prompts_are_verified_and_published(admin: Kube, operator: OperatorProcess, namespace: str) -> None:
    sample = yaml.safe_load((REPO / "docs" / "examples" / "prompt.yaml").read_text())
    sample["metadata"]["namespace"] = namespace
    tampered = json.loads(json.dumps(sample))
    tampered["metadata"]["name"] = "tampered"
    tampered["spec"]["checksum"] = "sha256:" + "0" * 64
    admin.apply(sample, tampered)
    prompt = wait_condition(admin, "prompt", "assistant", namespace)
    cm = admin.get("configmap", "inferflux-prompt-assistant", namespace) or {}
    assert cm["metadata"]["labels"]["inferflux.io/prompt"] == "true"
    assert cm["metadata"]["ownerReferences"][0]["uid"] == prompt["metadata"]["uid"]
    assert json.loads(cm["data"]["prompt.json"])["checksum"] == prompt["status"]["checksum"]
    bad = wait_condition(admin, "prompt", "tampered", namespace, "Stalled", "True")
    assert condition(bad, "Stalled")["reason"] == "ChecksumMismatch"
    assert admin.get("configmap", "inferflux-prompt-tampered", namespace) is None


def test_a_rollout_that_never_gets_ready_degrades_while_the_old_pods_serve(
    admin: Kube, operator: OperatorProcess, namespace: str
) -> None:
    admin.apply(llamacpp_model("stuck", namespace, rollout={"progressDeadlineSeconds": 10}))
    serving = wait_ready(admin, "stuck", namespace)
    # A new revision whose pods KWOK keeps un-Ready (the operator copies inferflux.io/e2e-* annotations).
    admin.run(
        "patch", "inferencemodel", "stuck", "-n", namespace, "--type=merge", "-p",
        '{"metadata":{"annotations":{"inferflux.io/e2e-hold-unready":"true"}},"spec":{"engineArgs":{"threads":1}}}',
    )  # fmt: skip
    model = wait_condition(admin, "inferencemodel", "stuck", namespace, "Degraded", "True")
    assert condition(model, "Degraded")["reason"] == "ProgressDeadlineExceeded"
    assert condition(model, "Ready")["status"] == "True"  # the old pod still serves
    assert condition(model, "Stalled")["status"] == "False"
    assert model["status"]["activeRevision"] == serving["status"]["activeRevision"]
    described = admin.run("describe", "inferencemodel", "stuck", "-n", namespace)
    assert "ProgressDeadlineExceeded" in described.split("Events:")[1]
