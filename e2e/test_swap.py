"""Blue/green swaps on the real control plane: every step, the routing table sampled throughout,
rollback of a candidate KWOK holds un-Ready, and an operator killed mid-swap.

The operator runs as a subprocess under its ServiceAccount, with the fixtures of test_operator.py
(loaded by path). KWOK pods have no process behind their IPs, so what is checked is what the router
would see: the routing table's endpoints, sampled while the swap runs.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from cluster_fixture import SAMPLE_SHA256

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
    assert len(sampler.samples) > 20
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
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["INFERFLUX_MODEL_SHA256"] == "b" * 64
