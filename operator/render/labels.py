"""Labels, names and the revision hash shared by every object rendered for one InferenceModel.

The label set is a contract with the router, the NetworkPolicies and the dashboards (see the
shared conventions in docs/operator.md); the revision hash names *what is served*, so that a
change of weights or engine settings is a new revision while a change of replicas is not.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import orjson

from inferflux.crds.inferencemodel import InferenceModel

FIELD_MANAGER: Final = "inferflux-operator"
MODEL_LABEL: Final = "inferflux.io/model"
REVISION_LABEL: Final = "inferflux.io/revision"
# The revision a Deployment's pods serve. It equals the pods' revision label unless the pods were
# swapped in place to another revision (operator/inplace.py): labels and selectors cannot follow.
SERVES_REVISION: Final = "inferflux.io/serves-revision"
# The revision the pods served before that swap, so a restarted operator that finds the active
# revision's Deployment serving the wanted one knows the same pods serve it (bluegreen.plan).
SWAPPED_FROM: Final = "inferflux.io/swapped-from"
MANAGED_BY: Final = "app.kubernetes.io/managed-by"
RUNTIME_PORT: Final = 8080
REVISION_LENGTH = 10


def selector_labels(model: InferenceModel) -> dict[str, str]:
    """The labels that pick one model's runtime pods; stable across revisions (selectors are immutable)."""
    return {
        "app.kubernetes.io/name": "inferflux-runtime",
        "app.kubernetes.io/instance": model.metadata.name,
        MODEL_LABEL: model.metadata.name,
    }


def common_labels(model: InferenceModel) -> dict[str, str]:
    """Labels on every object the operator creates for ``model``."""
    return {
        **selector_labels(model),
        "app.kubernetes.io/component": "runtime",
        "app.kubernetes.io/part-of": "inferflux",
        MANAGED_BY: FIELD_MANAGER,
    }


def pod_labels(model: InferenceModel) -> dict[str, str]:
    """Labels of the runtime pods: the common set plus the revision they serve."""
    return {**common_labels(model), REVISION_LABEL: revision_hash(model)}


def serving_spec(model: InferenceModel) -> dict[str, Any]:
    """The part of the spec that decides what a pod serves (not how many pods, nor routing)."""
    spec = model.spec
    return {
        "engine": spec.engine,
        "servedName": model.served_name,
        "source": spec.source.to_wire() if spec.source else None,
        "engineArgs": spec.engine_args.to_wire(),
    }


def revision_hash(model: InferenceModel) -> str:
    """A short, stable hash of the serving spec: equal specs give equal revisions on any machine."""
    canonical = orjson.dumps(serving_spec(model), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:REVISION_LENGTH]


def pod_revision(deployment: dict[str, Any]) -> str:
    """The revision label of a Deployment's pods (its selector's), which never changes."""
    labels = (deployment.get("metadata") or {}).get("labels") or {}
    template = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    return str((template.get("labels") or {}).get(REVISION_LABEL) or labels.get(REVISION_LABEL) or "")


def served_revision(deployment: dict[str, Any]) -> str:
    """The revision a Deployment's pods serve: its ``serves-revision`` annotation, else its pods' label."""
    annotations = (deployment.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(SERVES_REVISION) or pod_revision(deployment))


def swapped_from(deployment: dict[str, Any]) -> str:
    """The revision a Deployment's pods served before their last in-place swap, or empty."""
    annotations = (deployment.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(SWAPPED_FROM) or "")


def owner_reference(owner: Any) -> dict[str, Any]:
    """An owner reference to ``owner`` (an InferenceModel or Prompt), so deletion cleans up.

    ``controller: true`` marks the operator's object as the one managing it; ``blockOwnerDeletion``
    stays false so that deleting the owner never waits on this object.
    """
    return {
        "apiVersion": owner.api_version,
        "kind": owner.kind,
        "name": owner.metadata.name,
        "uid": owner.metadata.uid or "",
        "controller": True,
        "blockOwnerDeletion": False,
    }


def object_meta(model: InferenceModel, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """``metadata`` of an object owned by ``model`` in its namespace."""
    return {
        "name": name,
        "namespace": model.metadata.namespace,
        "labels": labels if labels is not None else common_labels(model),
        "ownerReferences": [owner_reference(model)],
    }


def deployment_name(model: InferenceModel, revision: str) -> str:
    """Each revision runs in its own Deployment, so blue and green can run side by side."""
    return f"{model.metadata.name}-{revision}"


def weights_configmap_name(model: InferenceModel, pod_revision: str) -> str:
    """The ConfigMap naming the weights that the pods of Deployment ``<model>-<pod_revision>`` load."""
    return f"{deployment_name(model, pod_revision)}-weights"


def admin_secret_name(model: InferenceModel) -> str:
    """The Secret holding the bearer token of the runtime's admin API (hot swap)."""
    return f"{model.metadata.name}-admin-token"


def service_host(model: InferenceModel) -> str:
    """The in-cluster DNS name of the model's Service."""
    return f"{model.metadata.name}.{model.metadata.namespace}.svc"


def owned_by(obj: dict[str, Any], owner: Any) -> dict[str, Any]:
    """``obj`` with an owner reference to ``owner`` (for objects rendered elsewhere)."""
    meta = {**obj["metadata"], "ownerReferences": [owner_reference(owner)]}
    return {**obj, "metadata": meta}


def published_configmap(name: str, namespace: str, key: str, document: str) -> dict[str, Any]:
    """A ConfigMap the operator publishes for the router in its own namespace (one document, one key)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": "inferflux", MANAGED_BY: FIELD_MANAGER},
        },
        "data": {key: document},
    }
