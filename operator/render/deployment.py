"""The runtime Deployment of one revision of an InferenceModel.

One Deployment per revision, named ``<model>-<revision>`` and selecting that revision's pods only,
so a new serving spec comes up beside the old one (blue/green, see ``operator/bluegreen.py``).
Within one revision a change (replicas, resources) still rolls with surge and no unavailability.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from inferflux.crds.inferencemodel import Engine, InferenceModel
from inferflux.operator.render.engine import (
    ADMIN_TOKEN_DIR,
    ADMIN_TOKEN_KEY,
    gpu_count,
    llamacpp_container,
    vllm_container,
)
from inferflux.operator.render.labels import (
    REVISION_LABEL,
    RUNTIME_PORT,
    SERVES_REVISION,
    SWAPPED_FROM,
    admin_secret_name,
    deployment_name,
    object_meta,
    pod_labels,
    revision_hash,
    selector_labels,
    serving_spec,
    weights_configmap_name,
)
from inferflux.operator.render.probes import probes
from inferflux.operator.render.security import (
    SCRATCH_DIR,
    SHM_DIR,
    container_security_context,
    pod_security_context,
)
from inferflux.operator.render.signing import signing_volume, verify_container, with_signing
from inferflux.operator.render.volume import model_volume
from inferflux.operator.render.weights import from_configmap
from inferflux.operator.settings import Settings

GPU_RESOURCE = "nvidia.com/gpu"
# Annotations copied from the model onto its pods: the e2e suite's KWOK stages read them.
POD_ANNOTATION_PREFIX = "inferflux.io/e2e-"
SERVING_SPEC: Final = "inferflux.io/serving-spec"


def resources(model: InferenceModel) -> dict[str, dict[str, str]]:
    """Requests and limits from the spec; a vLLM pod also gets its GPUs unless the spec names them."""
    spec = model.spec.resources
    rendered = {
        "requests": {name: str(value) for name, value in spec.requests.items()},
        "limits": {name: str(value) for name, value in spec.limits.items()},
    }
    if model.spec.engine == Engine.VLLM and GPU_RESOURCE not in rendered["limits"]:
        rendered["limits"][GPU_RESOURCE] = str(gpu_count(model))
    return {key: value for key, value in rendered.items() if value}


def scratch_volumes(engine: Engine) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Writable scratch (volumes, mounts) under a read-only root: /tmp, and shared memory for vLLM."""
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": SCRATCH_DIR}]
    if engine == Engine.VLLM:
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory"}})
        mounts.append({"name": "dshm", "mountPath": SHM_DIR})
    return volumes, mounts


def admin_token_volume(model: InferenceModel) -> tuple[dict[str, Any], dict[str, Any]]:
    """The admin API token Secret as a read-only file (volume, mount)."""
    volume = {
        "name": "admin-token",
        "secret": {
            "secretName": admin_secret_name(model),
            "items": [{"key": ADMIN_TOKEN_KEY, "path": ADMIN_TOKEN_KEY}],
            "defaultMode": 0o440,
        },
    }
    return volume, {"name": "admin-token", "mountPath": ADMIN_TOKEN_DIR, "readOnly": True}


def render_deployment(
    model: InferenceModel,
    settings: Settings,
    pod_revision: str | None = None,
    swapped_from: str = "",
) -> dict[str, Any]:
    """The Deployment serving ``model`` (engines llamacpp and vllm only).

    Its name, selector and pod labels carry ``pod_revision``, by default the model's revision. A
    Deployment whose pods were swapped in place keeps its own (selectors are immutable, and a new
    pod label would replace every pod): it is re-rendered with its old ``pod_revision``, and the
    ``serves-revision`` annotation says what it serves now (``swapped-from``: what it served before).
    """
    revision = revision_hash(model)
    pod_revision = pod_revision or revision
    engine = Engine(model.spec.engine)
    if model.spec.source is None or engine == Engine.PROVIDER:
        raise ValueError(f"engine {engine.value} has no runtime pods")
    source = model.spec.source
    weights = model_volume(source, settings.runtime_image)
    volumes, mounts = scratch_volumes(engine)
    volumes += weights.volumes
    mounts += weights.mounts
    init_containers = [with_signing(container, source) for container in weights.init_containers]
    signing = signing_volume(source)
    if signing is not None:
        volumes.append(signing[0])
    if engine == Engine.VLLM:
        container = vllm_container(model, settings.vllm_image, weights.model_path)
        if signing is not None and not init_containers:  # no fetch checked it: vLLM cannot
            init_containers.append(
                verify_container(source, settings.runtime_image, weights.model_path, mounts)
            )
    else:
        container = with_signing(
            llamacpp_container(model, settings.runtime_image, weights.model_path), source
        )
        container = from_configmap(container, weights_configmap_name(model, pod_revision))
        token_volume, token_mount = admin_token_volume(model)
        volumes.append(token_volume)
        mounts.append(token_mount)
    container |= {
        "ports": [{"name": "http", "containerPort": RUNTIME_PORT, "protocol": "TCP"}],
        "resources": resources(model),
        "securityContext": container_security_context(),
        "volumeMounts": [*mounts, *container.get("volumeMounts", [])],
        **probes(engine),
    }
    labels = {**pod_labels(model), REVISION_LABEL: pod_revision}
    passed = {k: v for k, v in model.metadata.annotations.items() if k.startswith(POD_ANNOTATION_PREFIX)}
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
        "terminationGracePeriodSeconds": 30,
        "containers": [container],
        "volumes": volumes,
    }
    if init_containers:
        pod_spec["initContainers"] = init_containers
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            **object_meta(model, deployment_name(model, pod_revision), labels),
            # What the pods serve, so a later change can tell whether only the weights moved.
            "annotations": {
                SERVING_SPEC: orjson.dumps(serving_spec(model), option=orjson.OPT_SORT_KEYS).decode(),
                SERVES_REVISION: revision,
                **({SWAPPED_FROM: swapped_from} if swapped_from else {}),
            },
        },
        "spec": {
            "replicas": model.spec.replicas,
            "revisionHistoryLimit": 3,
            "progressDeadlineSeconds": model.spec.rollout.progress_deadline_seconds,
            "selector": {"matchLabels": {**selector_labels(model), REVISION_LABEL: pod_revision}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": labels, "annotations": {REVISION_LABEL: pod_revision, **passed}},
                "spec": pod_spec,
            },
        },
    }
