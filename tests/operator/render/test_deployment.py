"""The runtime Deployment."""

from __future__ import annotations

from typing import Any

import pytest

from inferflux.operator.render.deployment import render_deployment, resources
from inferflux.operator.render.labels import REVISION_LABEL, revision_hash, selector_labels
from inferflux.operator.render.weights import render_weights_configmap
from inferflux.operator.settings import Settings
from tests.operator.conftest import ModelFactory


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (runtime,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(runtime, dict)
    return runtime


def test_llamacpp_deployment(model: ModelFactory, settings: Settings) -> None:
    m = model()
    deployment = render_deployment(m, settings)
    meta, spec = deployment["metadata"], deployment["spec"]
    assert (meta["name"], meta["namespace"]) == (f"gemma3-270m-{revision_hash(m)}", "team-a")
    assert meta["ownerReferences"][0]["uid"] == "uid-llamacpp-model"
    assert spec["replicas"] == 2
    assert spec["selector"] == {"matchLabels": selector_labels(m) | {REVISION_LABEL: revision_hash(m)}}
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert spec["template"]["metadata"]["labels"][REVISION_LABEL] == revision_hash(m)
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    runtime = container(deployment)
    assert runtime["image"] == "example.org/runtime:1"
    assert runtime["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert runtime["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert runtime["resources"] == {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}
    assert runtime["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["model"]["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert volumes["admin-token"]["secret"]["secretName"] == "gemma3-270m-admin-token"
    mounts = {m["mountPath"] for m in runtime["volumeMounts"]}
    assert {"/models", "/tmp", "/var/run/inferflux/admin"} <= mounts


def test_every_container_meets_the_restricted_profile(model: ModelFactory, settings: Settings) -> None:
    m = model(spec={"source": {"uri": "https://example.org/m.gguf"}})
    pod = render_deployment(m, settings)["spec"]["template"]["spec"]
    for c in pod["containers"] + pod["initContainers"]:
        ctx = c["securityContext"]
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
        assert ctx["runAsNonRoot"] is True
        assert ctx["seccompProfile"]["type"] == "RuntimeDefault"
    assert not any("hostPath" in v for v in pod["volumes"])


def test_vllm_deployment_uses_the_upstream_image_and_gpus(model: ModelFactory, settings: Settings) -> None:
    deployment = render_deployment(model("vllm-model"), settings)
    runtime = container(deployment)
    assert runtime["image"] == "example.org/vllm:2"
    assert runtime["args"][:2] == ["--model", "/models/llama-3.1-8b-instruct"]
    assert runtime["readinessProbe"]["httpGet"]["path"] == "/health"
    assert runtime["resources"]["limits"]["nvidia.com/gpu"] == "2"
    mounts = {m["mountPath"] for m in runtime["volumeMounts"]}
    assert "/dev/shm" in mounts
    assert "/var/run/inferflux/admin" not in mounts


def test_vllm_gets_its_gpus_when_the_spec_names_none(model: ModelFactory) -> None:
    m = model("vllm-model", spec={"resources": None, "engineArgs": {"pipelineParallelSize": 2}})
    assert resources(m) == {"limits": {"nvidia.com/gpu": "4"}}


def test_provider_models_have_no_deployment(model: ModelFactory, settings: Settings) -> None:
    with pytest.raises(ValueError, match="no runtime pods"):
        render_deployment(model("provider-model"), settings)


def test_rendering_is_deterministic(model: ModelFactory, settings: Settings) -> None:
    assert render_deployment(model(), settings) == render_deployment(model(), settings)


def test_only_e2e_annotations_of_the_model_reach_the_pods(model: ModelFactory, settings: Settings) -> None:
    annotations = {"inferflux.io/e2e-hold-unready": "true", "team.example/owner": "alice"}
    m = model(metadata={"name": "gemma3-270m", "annotations": annotations})
    template = render_deployment(m, settings)["spec"]["template"]["metadata"]["annotations"]
    assert template == {REVISION_LABEL: revision_hash(m), "inferflux.io/e2e-hold-unready": "true"}


SIGNED = {"signature": {"value": "A" * 88, "publicKeySecretRef": {"name": "signing", "key": "pub"}}}


def _env(container: dict[str, Any], configmap: dict[str, Any] | None = None) -> dict[str, str]:
    """The environment as the kubelet sets it, ``configMapKeyRef`` values read from ``configmap``."""
    data = (configmap or {}).get("data", {})
    env = {}
    for entry in container.get("env", []):
        ref = entry.get("valueFrom", {}).get("configMapKeyRef")
        if ref is not None:
            assert configmap is not None
            assert ref["name"] == configmap["metadata"]["name"]
        env[entry["name"]] = data[ref["key"]] if ref is not None else entry["value"]
    return env


def test_every_container_touching_signed_weights_gets_the_signature_and_the_key(
    model: ModelFactory, settings: Settings
) -> None:
    signed = model(spec={"source": {"uri": "https://models.example/m.gguf", **SIGNED}})
    pod = render_deployment(signed, settings)["spec"]["template"]["spec"]
    weights = render_weights_configmap(signed, revision_hash(signed), settings.runtime_image)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["model-signing-key"]["secret"] == {
        "secretName": "signing",
        "items": [{"key": "pub", "path": "ed25519.pub"}],
        "defaultMode": 0o440,
    }
    (fetch,) = pod["initContainers"]
    for checker in (fetch, pod["containers"][0]):
        env = _env(checker, weights)
        assert env["INFERFLUX_MODEL_SIGNATURE"] == "A" * 88
        assert env["INFERFLUX_MODEL_PUBLIC_KEY_FILE"] == "/etc/inferflux/model-key/ed25519.pub"
        mounts = {m["name"]: m for m in checker["volumeMounts"]}
        assert mounts["model-signing-key"] == {
            "name": "model-signing-key",
            "mountPath": "/etc/inferflux/model-key",
            "readOnly": True,
        }
    unsigned = render_deployment(model(), settings)["spec"]["template"]["spec"]
    unsigned_weights = render_weights_configmap(model(), revision_hash(model()), settings.runtime_image)
    assert "INFERFLUX_MODEL_SIGNATURE" not in _env(unsigned["containers"][0], unsigned_weights)
    assert "model-signing-key" not in {v["name"] for v in unsigned["volumes"]}


def test_vllm_on_a_signed_volume_is_preceded_by_a_verify_container(
    model: ModelFactory, settings: Settings
) -> None:
    signed = model("vllm-model", spec={"source": {"uri": "pvc://models/big.gguf", **SIGNED}})
    pod = render_deployment(signed, settings)["spec"]["template"]["spec"]
    (verify,) = pod["initContainers"]
    assert verify["name"] == "verify-model"
    assert verify["image"] == settings.runtime_image
    assert verify["command"] == ["python", "-m", "inferflux.runtime.verify"]
    env = _env(verify)
    assert env["INFERFLUX_MODEL_PATH"] == "/models/big.gguf"
    assert env["INFERFLUX_MODEL_SHA256"] == signed.spec.source.sha256  # type: ignore[union-attr]
    assert env["INFERFLUX_MODEL_SIGNATURE"] == "A" * 88
    assert {m["name"] for m in verify["volumeMounts"]} >= {"model", "model-signing-key"}
    assert verify["securityContext"]["readOnlyRootFilesystem"] is True
    plain = render_deployment(model("vllm-model"), settings)["spec"]["template"]["spec"]
    assert "initContainers" not in plain, "an unsigned volume source needs no verify step"
