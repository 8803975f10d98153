"""The facts the blue/green plan reads, taken from the cached Deployments, pods and model status.

Every revision's Deployment carries ``inferflux.io/model`` and ``inferflux.io/revision`` labels
(the revision label of its pods) and the ``inferflux.io/serves-revision`` annotation: what its
pods serve, which differs from their label after an in-place swap (``swapped-from`` then names
what they served before). A retired one also carries ``inferflux.io/retired-at`` (epoch seconds).
These, and ``status.activeRevision``, are the whole state of a swap: nothing lives only in memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from inferflux.crds.inferencemodel import InferenceModel
from inferflux.crds.meta import ConditionType, find_condition
from inferflux.operator.bluegreen import ROLLED_BACK, RevisionState
from inferflux.operator.render.labels import (
    MODEL_LABEL,
    REVISION_LABEL,
    deployment_name,
    pod_revision,
    served_revision,
    swapped_from,
)
from inferflux.operator.status import Rollout

RETIRED_AT: Final = "inferflux.io/retired-at"
DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"
PODS_FAILED: Final = "PodsFailed"


def _labels(body: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = (body.get("metadata") or {}).get("labels") or {}
    return labels


def own_deployments(deployments: Iterable[dict[str, Any]], model: InferenceModel) -> list[dict[str, Any]]:
    """The Deployments of ``model`` (by model label and namespace) that carry a revision label."""
    return [
        body
        for body in deployments
        if _labels(body).get(MODEL_LABEL) == model.metadata.name
        and (body.get("metadata") or {}).get("namespace") == model.metadata.namespace
        and _labels(body).get(REVISION_LABEL)
    ]


def model_deployments(
    deployments: Iterable[dict[str, Any]], model: InferenceModel
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The model's Deployments by the revision they serve, and the leftovers: Deployments of a
    revision that also has one under its canonical name ``<model>-<revision>`` (the single
    Deployment per model of earlier versions, named ``<model>``). A leftover keeps serving until
    the canonical one is Ready; without a canonical one, it stands for its revision."""
    found: dict[str, dict[str, Any]] = {}
    leftovers = []
    for body in own_deployments(deployments, model):
        meta = body.get("metadata") or {}
        revision = served_revision(body)
        other = found.get(revision)
        if other is None:
            found[revision] = body
        elif meta.get("name") == deployment_name(model, revision):
            found[revision] = body
            leftovers.append(other)
        else:
            leftovers.append(body)
    return found, leftovers


def pod_revision_for(revision: str, deployments: Iterable[dict[str, Any]], model: InferenceModel) -> str:
    """The pod revision label for a new Deployment serving ``revision``: the revision itself,
    unless a Deployment whose pods carry that label was swapped in place to serve another one
    (going back to weights swapped away from, by blue/green). Pods of two Deployments must never
    share a label: the next free ``<revision>-<n>`` is used then."""
    taken = {pod_revision(body) for body in own_deployments(deployments, model)}
    label, n = revision, 1
    while label in taken:
        label, n = f"{revision}-{n}", n + 1
    return label


def _failed_pods(pods: Iterable[dict[str, Any]], model: InferenceModel, revision: str) -> int:
    count = 0
    for pod in pods:
        labels, meta = _labels(pod), pod.get("metadata") or {}
        ours = labels.get(MODEL_LABEL) == model.metadata.name and labels.get(REVISION_LABEL) == revision
        if ours and meta.get("namespace") == model.metadata.namespace:
            count += (pod.get("status") or {}).get("phase") == "Failed"
    return count


def revision_state(
    deployment: dict[str, Any],
    revision: str,
    desired: int,
    pods: Iterable[dict[str, Any]],
    model: InferenceModel,
) -> RevisionState:
    """One revision's readiness, failure and retirement, from the Deployment serving it and its pods."""
    rollout = Rollout.of(deployment, revision, desired)
    ready = rollout.complete and rollout.ready >= desired
    failure = ""
    if rollout.deadline_exceeded:
        failure = DEADLINE_EXCEEDED
    elif _failed_pods(pods, model, pod_revision(deployment)):
        failure = PODS_FAILED
    annotation = ((deployment.get("metadata") or {}).get("annotations") or {}).get(RETIRED_AT)
    try:
        retired_at = float(annotation) if annotation is not None else None
    except ValueError:
        retired_at = 0.0  # unreadable: treat as drained long ago
    return RevisionState(revision, ready, failure, retired_at, swapped_from(deployment))


def rolled_back_already(model: InferenceModel) -> bool:
    """Whether the status says this generation's candidate was rolled back (do not start it again)."""
    progressing = find_condition(model.status.conditions, ConditionType.PROGRESSING)
    return (
        progressing is not None
        and progressing.reason == ROLLED_BACK
        and progressing.observed_generation == model.metadata.generation
    )
