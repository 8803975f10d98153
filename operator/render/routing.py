"""The routing table the router reads: every served name, and where its Ready replicas are.

Built from the InferenceModels and their runtime pods as a pure function, then published in the
``inferflux-routing`` ConfigMap (format: ``inferflux.crds.routing``, docs/architecture.md). Only
pods that are Ready, not terminating, and run the model's *active* revision are listed, so a
blue/green swap moves traffic in one write of the table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from inferflux.crds.inferencemodel import Engine, InferenceModel
from inferflux.crds.routing import CONFIGMAP_KEY, Endpoint, ModelRoute, ProviderRoute, RoutingTable
from inferflux.operator.render.labels import MODEL_LABEL, REVISION_LABEL, RUNTIME_PORT, published_configmap


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


def endpoints_of(model: InferenceModel, pods: Iterable[dict[str, Any]]) -> list[Endpoint]:
    """Ready endpoints of ``model``'s active revision, sorted by pod name for stable output."""
    revision = model.status.active_revision
    found = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        owner = (meta.get("namespace"), labels.get(MODEL_LABEL))
        if owner != (model.metadata.namespace, model.metadata.name) or not pod_is_ready(pod):
            continue
        if revision and labels.get(REVISION_LABEL) != revision:
            continue
        url = f"http://{pod['status']['podIP']}:{RUNTIME_PORT}"
        found.append(Endpoint(url=url, revision=labels.get(REVISION_LABEL, ""), pod=meta.get("name", "")))
    return sorted(found, key=lambda endpoint: endpoint.pod)


def model_route(model: InferenceModel, pods: Iterable[dict[str, Any]]) -> ModelRoute:
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
        endpoints=[] if provider else endpoints_of(model, pods),
        provider=provider,
        fallback=list(spec.fallback),
        balancer=spec.routing.balancer,
        max_concurrency=spec.routing.max_concurrency,
        max_queue=spec.routing.max_queue,
        scale_to_zero=spec.scale_to_zero.enabled,
    )


def build_routing_table(models: Iterable[InferenceModel], pods: Iterable[dict[str, Any]]) -> RoutingTable:
    """The whole table. When two models claim one served name, the first by namespace/name wins."""
    grouped = pods_by_model(pods)
    routes: dict[str, ModelRoute] = {}
    for model in sorted(models, key=lambda m: (m.metadata.namespace or "", m.metadata.name)):
        if model.served_name not in routes:
            own = grouped.get((model.metadata.namespace or "", model.metadata.name), [])
            routes[model.served_name] = model_route(model, own)
    return RoutingTable(models=routes)


def render_routing_configmap(table: RoutingTable, name: str, namespace: str) -> dict[str, Any]:
    """The ConfigMap the router watches, with the table as canonical (sorted) JSON."""
    document = orjson.dumps(table.to_wire(), option=orjson.OPT_SORT_KEYS).decode()
    return published_configmap(name, namespace, CONFIGMAP_KEY, document)
