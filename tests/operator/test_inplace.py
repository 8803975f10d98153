"""The in-place attempt's pure parts: the active spec, which pods to ask, and how a swap is recorded."""

from __future__ import annotations

from typing import Any

from inferflux.operator.inplace import (
    active_spec,
    ready_pod_ips,
    recorded_deployment,
    unsettled_pods,
    with_annotations_of,
)
from inferflux.operator.render.deployment import render_deployment
from inferflux.operator.render.labels import (
    SWAPPED_FROM,
    pod_revision,
    revision_hash,
    served_revision,
    serving_spec,
)
from inferflux.operator.render.weights import render_weights_configmap, weights_configmap_of
from inferflux.operator.settings import Settings
from inferflux.operator.strategy import not_settled
from tests.operator.conftest import ModelFactory


def test_a_rendered_deployment_names_the_spec_it_serves(model: ModelFactory, settings: Settings) -> None:
    m = model()
    assert active_spec(render_deployment(m, settings)) == serving_spec(m)
    assert active_spec({"metadata": {"annotations": {"inferflux.io/serving-spec": "{not json"}}}) is None
    assert active_spec(None) is None


def _pod(name: str, revision: str, ip: str | None, ready: bool = True, **meta: Any) -> dict[str, Any]:
    labels = {"inferflux.io/model": "gemma3-270m", "inferflux.io/revision": revision}
    return {
        "metadata": {"name": name, "namespace": "team-a", "labels": labels, **meta},
        "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def test_only_ready_running_pods_of_the_active_revision_are_asked_in_name_order(model: ModelFactory) -> None:
    pods = [
        _pod("b", "r1", "10.0.0.2"),
        _pod("a", "r1", "10.0.0.1"),
        _pod("c", "r2", "10.0.0.3"),
        _pod("d", "r1", "10.0.0.4", ready=False),
        _pod("e", "r1", None),
        _pod("f", "r1", "10.0.0.6", deletionTimestamp="2026-01-01T00:00:00Z"),
    ]
    assert ready_pod_ips(pods, model(), "r1") == ["10.0.0.1", "10.0.0.2"]


# ---- recording a successful swap: the same pods, the new revision, and what a restart loads ----

Q8 = {"uri": "pvc://models/gemma-3-270m-q8_0.gguf", "sha256": "b" * 64}
SIGNED = {"signature": {"value": "A" * 88, "publicKeySecretRef": {"name": "signing", "key": "pub"}}}


def _restart_env(deployment: dict[str, Any], configmap: dict[str, Any]) -> dict[str, str]:
    """The runtime's environment in a pod created now from ``deployment``'s template, as the
    kubelet resolves it: literal values, and ``configMapKeyRef`` values read from ``configmap``."""
    (runtime,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {}
    for var in runtime["env"]:
        ref = var.get("valueFrom", {}).get("configMapKeyRef")
        if ref is None:
            env[var["name"]] = var["value"]
        elif ref["name"] == configmap["metadata"]["name"]:
            env[var["name"]] = configmap["data"][ref["key"]]
    return env


def test_the_recorded_deployment_keeps_its_pods_and_says_it_serves_the_new_revision(
    model: ModelFactory, settings: Settings
) -> None:
    old, new = model(), model(spec={"source": Q8})
    active = render_deployment(old, settings)
    recorded = recorded_deployment(new, settings, active)
    # Same object, same pods: the template (hence no rollout), selector and labels are unchanged.
    assert recorded["metadata"]["name"] == active["metadata"]["name"]
    assert recorded["spec"]["template"] == active["spec"]["template"]
    assert recorded["spec"]["selector"] == active["spec"]["selector"]
    assert pod_revision(recorded) == revision_hash(old)
    # What they serve now, and what they served before.
    assert served_revision(recorded) == revision_hash(new)
    assert recorded["metadata"]["annotations"][SWAPPED_FROM] == revision_hash(old)
    assert active_spec(recorded) == serving_spec(new)
    assert served_revision(active) == revision_hash(old)  # before the swap


def test_a_pod_restarted_after_the_swap_loads_the_new_weights(
    model: ModelFactory, settings: Settings
) -> None:
    old, new = model(), model(spec={"source": Q8})
    recorded = recorded_deployment(new, settings, render_deployment(old, settings))
    # The ConfigMap the swap wrote, under the Deployment's (old) pod revision.
    weights = render_weights_configmap(new, pod_revision(recorded), settings.runtime_image)
    assert weights["metadata"]["name"] == f"gemma3-270m-{revision_hash(old)}-weights"
    assert weights_configmap_of(recorded) == weights["metadata"]["name"]
    env = _restart_env(recorded, weights)
    assert env["INFERFLUX_MODEL_PATH"] == "/models/gemma-3-270m-q8_0.gguf"
    assert env["INFERFLUX_MODEL_SHA256"] == "b" * 64
    # Before the swap the same template resolved to the old weights.
    before = render_weights_configmap(old, revision_hash(old), settings.runtime_image)
    assert _restart_env(recorded, before)["INFERFLUX_MODEL_SHA256"] == old.spec.source.sha256  # type: ignore[union-attr]


def test_a_restarted_pod_of_a_signed_model_checks_the_new_signature_with_the_same_key(
    model: ModelFactory, settings: Settings
) -> None:
    old = model(spec={"source": {**SIGNED}})
    new = model(spec={"source": {**Q8, **SIGNED, "signature": {**SIGNED["signature"], "value": "B" * 88}}})
    active = render_deployment(old, settings)
    recorded = recorded_deployment(new, settings, active)
    assert recorded["spec"]["template"] == active["spec"]["template"]
    env = _restart_env(
        recorded, render_weights_configmap(new, pod_revision(recorded), settings.runtime_image)
    )
    assert env["INFERFLUX_MODEL_SIGNATURE"] == "B" * 88
    assert env["INFERFLUX_MODEL_SHA256"] == "b" * 64
    assert env["INFERFLUX_MODEL_PUBLIC_KEY_FILE"] == "/etc/inferflux/model-key/ed25519.pub"
    volumes = {v["name"] for v in recorded["spec"]["template"]["spec"]["volumes"]}
    assert "model-signing-key" in volumes


def test_the_cache_view_after_recording_keeps_status_and_takes_the_new_annotations(
    model: ModelFactory, settings: Settings
) -> None:
    old, new = model(), model(spec={"source": Q8})
    active = render_deployment(old, settings) | {"status": {"readyReplicas": 2}}
    view = with_annotations_of(active, recorded_deployment(new, settings, active))
    assert view["status"] == {"readyReplicas": 2}
    assert served_revision(view) == revision_hash(new)
    assert served_revision(active) == revision_hash(old)  # the cached body itself is not changed


def test_only_a_settled_revision_is_swapped(model: ModelFactory) -> None:
    m = model()
    starting = _pod("c", "r1", None, ready=False)
    pods = [_pod("a", "r1", "10.0.0.1"), _pod("b", "r1", "10.0.0.2"), _pod("x", "r2", None, ready=False)]
    assert unsettled_pods(pods, m, "r1") == 0
    assert unsettled_pods([*pods, starting], m, "r1") == 1
    leaving = _pod("d", "r1", "10.0.0.4", deletionTimestamp="2026-01-01T00:00:00Z")
    assert unsettled_pods([*pods, leaving], m, "r1") == 1
    assert not_settled(2, 0, 2) == ""
    assert "1 starting" in not_settled(2, 1, 2)
    assert not_settled(1, 0, 2)  # a pod missing altogether
    assert not_settled(0, 0, 0)  # scaled to zero: nothing to swap, nothing to record
