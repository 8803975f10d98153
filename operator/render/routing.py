"""The routing table the router reads: every served name, and where its Ready replicas are.

Built from the InferenceModels and their runtime pods as a pure function, then published in the
``inferflux-routing`` ConfigMap (format: ``inferflux.crds.routing``, docs/architecture.md). Only
pods that are Ready, not terminating, and serve the model's *active* revision are listed, so a
blue/green swap moves traffic in one write of the table. What a pod serves is what its Deployment
says (``inferflux.io/serves-revision``), which differs from the pod's revision label after an
in-place swap; a pod whose Deployment is not known is taken to serve its label.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from inferflux.crds.inferencemodel import Engine, InferenceModel
from inferflux.crds.meta import ConditionType
from inferflux.crds.routing import (
    CONFIGMAP_KEY,
    Endpoint,
    ModelRoute,
    ProviderRoute,
    RouteCondition,
    RoutingTable,
)
from inferflux.operator.render.labels import (
    MODEL_LABEL,
    REVISION_LABEL,
    RUNTIME_PORT,
    pod_revision,
    published_configmap,
    served_revision,
    swapped_from,
)


def pod_is_ready(pod: dict[str, Any]) -> bool:
    """A pod that can take traffic: Ready condition True, an IP, and not being deleted."""
    status = pod.get("status") or {}
    if pod.get("metadata", {}).get("deletionTimestamp") or not status.get("podIP"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def pods_by_model(pods: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Pods grouped by (namespace, model label), so each model looks only at its own."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        model = (meta.get("labels") or {}).get(MODEL_LABEL)
        if model:
            grouped.setdefault((meta.get("namespace") or "", model), []).append(pod)
    return grouped


def served_by_label(model: InferenceModel, deployments: Iterable[dict[str, Any]]) -> dict[str, str]:
    """What the pods of each revision label serve, from ``model``'s Deployments.

    Between the two writes that record an in-place swap (the Deployment's annotation, then the
    model's ``activeRevision``) the Deployment already serves the new revision while the status
    still names the old one: those are the same pods, so they count as the active revision until
    the status catches up, and the table never goes empty in between.
    """
    ours = [
        body
        for body in deployments
        if (body.get("metadata") or {}).get("namespace") == model.metadata.namespace
        and ((body.get("metadata") or {}).get("labels") or {}).get(MODEL_LABEL) == model.metadata.name
    ]
    served = {pod_revision(body): served_revision(body) for body in ours}
    active = model.status.active_revision
    if active and active not in served.values():
        served |= {pod_revision(body): active for body in ours if swapped_from(body) == active}
    return served


def endpoints_of(
    model: InferenceModel, pods: Iterable[dict[str, Any]], deployments: Iterable[dict[str, Any]] = ()
) -> list[Endpoint]:
    """Ready endpoints of ``model``'s active revision, sorted by pod name for stable output."""
    revision = model.status.active_revision
    served = served_by_label(model, deployments)
    found = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        owner = (meta.get("namespace"), labels.get(MODEL_LABEL))
        if owner != (model.metadata.namespace, model.metadata.name) or not pod_is_ready(pod):
            continue
        label = labels.get(REVISION_LABEL, "")
        serves = served.get(label, label)
        if revision and serves != revision:
            continue
        url = f"http://{pod['status']['podIP']}:{RUNTIME_PORT}"
        found.append(Endpoint(url=url, revision=serves, pod=meta.get("name", "")))
    return sorted(found, key=lambda endpoint: endpoint.pod)


#: The conditions the table carries for the admin console, in this order.
SHOWN_CONDITIONS = (ConditionType.READY, ConditionType.PROGRESSING, ConditionType.STALLED)
MESSAGE_CHARS = 256  # a stalled spec's message can be long; the table stays small


def shown_conditions(model: InferenceModel) -> list[RouteCondition]:
    """The model's conditions the console shows, without their times: a table rewritten on every
    transition time would be written more often than what it says changes."""
    found = {condition.type: condition for condition in model.status.conditions}
    return [
        RouteCondition(
            type=kind,
            status=found[kind].status,
            reason=found[kind].reason,
            message=found[kind].message[:MESSAGE_CHARS],
        )
        for kind in SHOWN_CONDITIONS
        if kind in found
    ]


def model_route(
    model: InferenceModel, pods: Iterable[dict[str, Any]], deployments: Iterable[dict[str, Any]] = ()
) -> ModelRoute:
    """The route of one model: a provider entry, or its runtime endpoints."""
    spec = model.spec
    provider = None
    if spec.engine == Engine.PROVIDER and spec.provider is not None:
        provider = ProviderRoute(
            name=spec.provider.name,
            model=spec.provider.model or "",
            base_url=spec.provider.base_url,
            api_key_secret_ref=spec.provider.api_key_secret_ref,
            namespace=model.metadata.namespace or "",
            timeout_seconds=spec.provider.timeout_seconds,
        )
    return ModelRoute(
        namespace=model.metadata.namespace or "",
        name=model.metadata.name,
        engine=spec.engine,
        revision=model.status.active_revision or "",
        endpoints=[] if provider else endpoints_of(model, pods, deployments),
        provider=provider,
        fallback=list(spec.fallback),
        balancer=spec.routing.balancer,
        max_concurrency=spec.routing.max_concurrency,
        max_queue=spec.routing.max_queue,
        scale_to_zero=spec.scale_to_zero.enabled,
        autoscaling=spec.autoscaling.enabled,
        conditions=shown_conditions(model),
    )


def build_routing_table(
    models: Iterable[InferenceModel],
    pods: Iterable[dict[str, Any]],
    deployments: Iterable[dict[str, Any]] = (),
) -> RoutingTable:
    """The whole table. When two models claim one served name, the first by namespace/name wins."""
    grouped = pods_by_model(pods)
    grouped_deployments = pods_by_model(deployments)  # Deployments carry the model label too
    routes: dict[str, ModelRoute] = {}
    for model in sorted(models, key=lambda m: (m.metadata.namespace or "", m.metadata.name)):
        if model.served_name not in routes:
            key = (model.metadata.namespace or "", model.metadata.name)
            own = grouped.get(key, [])
            routes[model.served_name] = model_route(model, own, grouped_deployments.get(key, []))
    return RoutingTable(models=routes)


def render_routing_configmap(table: RoutingTable, name: str, namespace: str) -> dict[str, Any]:
    """The ConfigMap the router watches, with the table as canonical (sorted) JSON."""
    document = orjson.dumps(table.to_wire(), option=orjson.OPT_SORT_KEYS).decode()
    return published_configmap(name, namespace, CONFIGMAP_KEY, document)
