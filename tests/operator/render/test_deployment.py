"""The runtime Deployment."""

from __future__ import annotations

from typing import Any

import pytest

from inferflux.operator.render.deployment import render_deployment, resources
from inferflux.operator.render.labels import REVISION_LABEL, revision_hash, selector_labels
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
