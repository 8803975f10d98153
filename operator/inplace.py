"""Swap the active pods in place, and record it on their Deployment: no new pods when it works.

When ``strategy.choose_strategy`` picks InPlace, the active revision's pods are asked, one at a
time, to load the new weights (``swap_client``). Only a settled Deployment is asked: every desired
pod Ready and no other pod starting or ending, so no pod of it is missed.

Before the first pod is asked, the Deployment's weights ConfigMap (``render/weights.py``) is
pointed at the new weights, so a pod that (re)starts from then on loads them. Once every pod
swapped, the Deployment is re-applied with the same pod template (same name, selector and pod
labels) and the annotations that it now serves the new revision (``serves-revision``, the new
``serving-spec``, ``swapped-from`` the old revision): no candidate Deployment, no rollout. The
blue/green plan then takes it as the active revision (``bluegreen.plan``), and the routing table
keeps listing the same pods.

A refusal (409: the model does not fit beside the old one) or a failure, on any pod, points the
ConfigMap back at the old weights and continues as plain blue/green; an Event says which and why.
Pods swapped before the failure serve the new weights until the candidate takes over and their
Deployment is retired: they are never recorded as the new revision.

The attempt happens only while no Deployment serves the wanted revision; the recorded one then
does, so a level-based reconcile does not ask twice (a crash in between asks again, which the
runtime answers by loading the same weights again).
"""

from __future__ import annotations

import base64
import copy
import json
import logging
from typing import Any, Final

import aiohttp

from inferflux.crds.inferencemodel import KIND, InferenceModel
from inferflux.crds.meta import API_VERSION
from inferflux.operator.cache import ClusterCache
from inferflux.operator.render.deployment import SERVING_SPEC, render_deployment
from inferflux.operator.render.engine import ADMIN_TOKEN_KEY
from inferflux.operator.render.labels import (
    MODEL_LABEL,
    REVISION_LABEL,
    admin_secret_name,
    pod_revision,
    revision_hash,
    served_revision,
    serving_spec,
)
from inferflux.operator.render.volume import model_volume
from inferflux.operator.render.weights import render_weights_configmap, weights_configmap_of
from inferflux.operator.settings import Settings
from inferflux.operator.storage import Storage
from inferflux.operator.strategy import Choice, choose_strategy, not_settled
from inferflux.operator.swap_client import Outcome, SwapRequest, SwapResult, swap_pods

log = logging.getLogger(__name__)

EVENT_REASONS: Final = {Outcome.SWAPPED: "SwappedInPlace", Outcome.REFUSED: "InPlaceRefused"}


def active_spec(deployment: dict[str, Any] | None) -> dict[str, Any] | None:
    """The serving spec a revision's Deployment was rendered from (its annotation), if readable."""
    text = ((deployment or {}).get("metadata", {}).get("annotations") or {}).get(SERVING_SPEC)
    try:
        spec = json.loads(text) if text else None
    except ValueError:
        return None
    return spec if isinstance(spec, dict) else None


def _ours(pod: dict[str, Any], model: InferenceModel, revision: str) -> bool:
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    return (
        labels.get(MODEL_LABEL) == model.metadata.name
        and labels.get(REVISION_LABEL) == revision
        and meta.get("namespace") == model.metadata.namespace
    )


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def ready_pod_ips(pods: list[dict[str, Any]], model: InferenceModel, revision: str) -> list[str]:
    """IPs of the Ready, non-terminating pods labelled ``revision``, by pod name (a stable order)."""
    found = []
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        serving = _ready(pod) and not meta.get("deletionTimestamp") and status.get("podIP")
        if _ours(pod, model, revision) and serving:
            found.append((meta.get("name", ""), status["podIP"]))
    return [ip for _, ip in sorted(found)]


def unsettled_pods(pods: list[dict[str, Any]], model: InferenceModel, revision: str) -> int:
    """Pods labelled ``revision`` not Ready with an IP, or terminating: a swap would miss them."""
    return sum(
        _ours(pod, model, revision)
        and not (
            _ready(pod)
            and (pod.get("status") or {}).get("podIP")
            and not (pod.get("metadata") or {}).get("deletionTimestamp")
        )
        for pod in pods
    )


def recorded_deployment(model: InferenceModel, settings: Settings, active: dict[str, Any]) -> dict[str, Any]:
    """The active Deployment re-rendered to say it serves ``model``'s revision, with the same pods.

    Its pod revision label (and so its name, selector and template labels) stays what it was;
    since only the weights changed and they are read from the ConfigMap, the template is the one
    the pods run, so applying it rolls nothing.
    """
    return render_deployment(model, settings, pod_revision(active), swapped_from=served_revision(active))


def with_annotations_of(cached: dict[str, Any], rendered: dict[str, Any]) -> dict[str, Any]:
    """``cached`` (with its status) carrying ``rendered``'s annotations: the cache's view after the write."""
    body = copy.deepcopy(cached)
    annotations = body.setdefault("metadata", {}).setdefault("annotations", {}) or {}
    body["metadata"]["annotations"] = annotations | rendered["metadata"]["annotations"]
    return body


class InPlaceSwapper:
    """Asks the active pods to swap when the strategy allows it, and records the swap."""

    def __init__(self, storage: Storage, cache: ClusterCache, settings: Settings) -> None:
        self._storage = storage
        self._cache = cache
        self._settings = settings

    def choice(self, model: InferenceModel, active_deployment: dict[str, Any] | None) -> Choice:
        """The strategy for moving from the active Deployment's spec to the model's."""
        image = self._settings.runtime_image
        from_configmap = weights_configmap_of(active_deployment or {}) is not None
        spec = active_spec(active_deployment)
        return choose_strategy(model, spec, serving_spec(model), image, from_configmap)

    async def attempt(self, model: InferenceModel, active: dict[str, Any]) -> dict[str, Any] | None:
        """Swap the active Deployment's pods in place if the strategy says so.

        Returns the Deployment as recorded (serving the model's revision) when every pod swapped,
        else None: the caller goes on with blue/green.
        """
        choice = self.choice(model, active)
        if not choice.in_place or model.spec.source is None:
            return None
        namespace = model.metadata.namespace or ""
        label = pod_revision(active)
        pods = list(self._cache.pods.values())
        ips = ready_pod_ips(pods, model, label)
        problem = not_settled(len(ips), unsettled_pods(pods, model, label), model.spec.replicas)
        if problem:
            self._fallback(model, "InPlaceSkipped", problem)
            return None
        secret = await self._storage.get("Secret", namespace, admin_secret_name(model))
        token = _decoded_token(secret)
        if not token:
            result = SwapResult(
                Outcome.FAILED, f"the admin token Secret {admin_secret_name(model)} is missing"
            )
        else:
            image = self._settings.runtime_image
            configmap = render_weights_configmap(model, label, image)
            before = await self._storage.get("ConfigMap", namespace, configmap["metadata"]["name"])
            await self._storage.apply(configmap)  # from now on a (re)starting pod loads the new weights
            path = model_volume(model.spec.source, image).model_path
            request = SwapRequest(
                path,
                model.served_name,
                model.spec.source.sha256,
                model.spec.source.signature.value if model.spec.source.signature else "",
            )
            async with aiohttp.ClientSession() as session:
                result = await swap_pods(session, ips, token, request)
            if result.outcome != Outcome.SWAPPED:  # the old weights again, for pods restarting later
                if before is not None:
                    await self._storage.apply(configmap | {"data": before.get("data") or {}})
                else:
                    await self._storage.delete("ConfigMap", namespace, configmap["metadata"]["name"])
        if result.outcome != Outcome.SWAPPED:
            reason = EVENT_REASONS.get(result.outcome, "InPlaceFailed")
            self._fallback(model, reason, result.reason)
            return None
        recorded = recorded_deployment(model, self._settings, active)
        await self._storage.apply(recorded)
        old, new = served_revision(active), revision_hash(model)
        note = (
            f"revision {old} -> {new}: {result.reason} in place; Deployment {active['metadata']['name']}"
            " now serves the new revision, no new pods"
        )
        self._storage.post_event_soon(_regarding(model), "Normal", EVENT_REASONS[Outcome.SWAPPED], note)
        log.info("in-place swap of %s/%s: %s -> %s", namespace, model.metadata.name, old, new)
        return with_annotations_of(active, recorded)

    def _fallback(self, model: InferenceModel, reason: str, why: str) -> None:
        note = f"{why}; falling back to blue/green"
        self._storage.post_event_soon(_regarding(model), "Warning", reason, note[:1024])
        log.info("in-place swap of %s/%s: %s", model.metadata.namespace, model.metadata.name, reason)


def _decoded_token(secret: dict[str, Any] | None) -> str:
    """The admin bearer token from the Secret's data (base64), or empty."""
    data = (secret or {}).get("data") or {}
    raw = data.get(ADMIN_TOKEN_KEY)
    return base64.b64decode(raw).decode().strip() if raw else ""


def _regarding(model: InferenceModel) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": model.metadata.to_wire()}
