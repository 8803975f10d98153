"""The weights a llama.cpp runtime pod loads at start, named in a ConfigMap beside its Deployment.

A pod template is immutable in practice: changing it rolls every pod. An in-place swap
(``operator/inplace.py``) changes the weights of running pods without new ones, so what a pod
restarted *later* loads cannot live in the template. Each llama.cpp Deployment ``<model>-<rev>``
therefore takes the weights' path, sha256 and (signed sources) signature from the ConfigMap
``<model>-<rev>-weights`` through ``configMapKeyRef`` environment variables. The kubelet resolves
those when it creates a container, so a change of the ConfigMap restarts nothing and reaches a
pod only when it (re)starts. The public key stays a mounted Secret in the template, so the
runtime keeps checking the signature and the digest of whatever the ConfigMap names.
"""

from __future__ import annotations

from typing import Any, Final

from inferflux.crds.inferencemodel import InferenceModel
from inferflux.operator.render.labels import (
    REVISION_LABEL,
    common_labels,
    object_meta,
    weights_configmap_name,
)
from inferflux.operator.render.volume import model_volume

PATH_KEY: Final = "INFERFLUX_MODEL_PATH"
SHA256_KEY: Final = "INFERFLUX_MODEL_SHA256"
SIGNATURE_KEY: Final = "INFERFLUX_MODEL_SIGNATURE"
WEIGHTS_KEYS: Final = (PATH_KEY, SHA256_KEY, SIGNATURE_KEY)


def weights_data(model: InferenceModel, runtime_image: str) -> dict[str, str]:
    """The ConfigMap's data: where the weights are and what they must hash to (and be signed as)."""
    source = model.spec.source
    if source is None:
        raise ValueError("a model without a source has no weights")
    data = {PATH_KEY: model_volume(source, runtime_image).model_path, SHA256_KEY: source.sha256}
    if source.signature is not None:
        data[SIGNATURE_KEY] = source.signature.value
    return data


def render_weights_configmap(model: InferenceModel, pod_revision: str, runtime_image: str) -> dict[str, Any]:
    """The ConfigMap the pods of Deployment ``<model>-<pod_revision>`` read their weights from."""
    labels = {**common_labels(model), REVISION_LABEL: pod_revision}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(model, weights_configmap_name(model, pod_revision), labels),
        "data": weights_data(model, runtime_image),
    }


def from_configmap(container: dict[str, Any], configmap: str) -> dict[str, Any]:
    """``container`` with its weights variables read from ``configmap`` instead of literal values."""
    env = []
    for var in container.get("env", []):
        if var["name"] in WEIGHTS_KEYS:
            var = {
                "name": var["name"],
                "valueFrom": {"configMapKeyRef": {"name": configmap, "key": var["name"]}},
            }
        env.append(var)
    return container | {"env": env}


def weights_configmap_of(deployment: dict[str, Any]) -> str | None:
    """The ConfigMap a Deployment's runtime container reads its weights path from, if it does.

    None for a Deployment whose template names the weights itself (vLLM, or one rendered before
    this layout): its pods cannot be swapped in place without a restart loading the old weights.
    """
    spec = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    for container in spec.get("containers") or []:
        for var in container.get("env") or []:
            ref = (var.get("valueFrom") or {}).get("configMapKeyRef") or {}
            if var.get("name") == PATH_KEY and ref.get("key") == PATH_KEY and ref.get("name"):
                return str(ref["name"])
    return None
