"""Try an in-place swap before a candidate Deployment is created; blue/green follows either way.

When ``strategy.choose_strategy`` picks InPlace, the active revision's Ready pods are asked, one at
a time, to load the new weights (``swap_client``). Swapped pods serve the new model at once, with
no new pod and no cold start. The candidate Deployment is then created as in blue/green, so the
pod template names the new source and a restarted pod loads the right model: that replacement
runs in the background while traffic is already on the new model (the trade-off, docs/swaps.md).
A refusal (409: the model does not fit beside the old one) or a failure leaves the old model
serving and the swap continues as plain blue/green; an Event says which and why.

The attempt happens only while the candidate's Deployment does not exist; the Deployment applied
right after marks it done, so a level-based reconcile does not ask twice (a crash in between asks
again, which the runtime answers by loading the same weights again).
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any, Final

import aiohttp

from inferflux.crds.inferencemodel import KIND, InferenceModel
from inferflux.crds.meta import API_VERSION
from inferflux.operator.cache import ClusterCache
from inferflux.operator.render.deployment import SERVING_SPEC
from inferflux.operator.render.engine import ADMIN_TOKEN_KEY
from inferflux.operator.render.labels import MODEL_LABEL, REVISION_LABEL, admin_secret_name, serving_spec
from inferflux.operator.render.volume import model_volume
from inferflux.operator.settings import Settings
from inferflux.operator.storage import Storage
from inferflux.operator.strategy import Choice, after_refusal, choose_strategy
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


def ready_pod_ips(pods: list[dict[str, Any]], model: InferenceModel, revision: str) -> list[str]:
    """IPs of the revision's Ready, non-terminating pods, by pod name (a stable order)."""
    found = []
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        labels = meta.get("labels") or {}
        ours = labels.get(MODEL_LABEL) == model.metadata.name and labels.get(REVISION_LABEL) == revision
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        )
        if (
            ours
            and meta.get("namespace") == model.metadata.namespace
            and ready
            and not meta.get("deletionTimestamp")
        ) and status.get("podIP"):
            found.append((meta.get("name", ""), status["podIP"]))
    return [ip for _, ip in sorted(found)]


class InPlaceSwapper:
    """Asks the active pods to swap when the strategy allows it."""

    def __init__(self, storage: Storage, cache: ClusterCache, settings: Settings) -> None:
        self._storage = storage
        self._cache = cache
        self._settings = settings

    def choice(self, model: InferenceModel, active_deployment: dict[str, Any] | None) -> Choice:
        """The strategy for moving from the active Deployment's spec to the model's."""
        image = self._settings.runtime_image
        return choose_strategy(model, active_spec(active_deployment), serving_spec(model), image)

    async def attempt(self, model: InferenceModel, active: str, active_deployment: dict[str, Any]) -> Choice:
        """Swap the active pods in place if the strategy says so; the final choice, with its reason."""
        choice = self.choice(model, active_deployment)
        if not choice.in_place or model.spec.source is None:
            return choice
        namespace = model.metadata.namespace or ""
        secret = await self._storage.get("Secret", namespace, admin_secret_name(model))
        token = _decoded_token(secret)
        ips = ready_pod_ips(list(self._cache.pods.values()), model, active)
        if not token:
            result = SwapResult(
                Outcome.FAILED, f"the admin token Secret {admin_secret_name(model)} is missing"
            )
        else:
            path = model_volume(model.spec.source, self._settings.runtime_image).model_path
            request = SwapRequest(path, model.served_name, model.spec.source.sha256)
            async with aiohttp.ClientSession() as session:
                result = await swap_pods(session, ips, token, request)
        reason = EVENT_REASONS.get(result.outcome, "InPlaceFailed")
        if result.outcome == Outcome.SWAPPED:
            note = f"{result.reason}; the pods now serve the new model, the candidate Deployment follows"
            self._storage.post_event_soon(_regarding(model), "Normal", reason, note)
            return choice
        note = f"{result.reason}; falling back to blue/green"
        self._storage.post_event_soon(_regarding(model), "Warning", reason, note)
        log.info("in-place swap of %s/%s: %s", namespace, model.metadata.name, result.outcome.value)
        return after_refusal(choice, result.reason)


def _decoded_token(secret: dict[str, Any] | None) -> str:
    """The admin bearer token from the Secret's data (base64), or empty."""
    data = (secret or {}).get("data") or {}
    raw = data.get(ADMIN_TOKEN_KEY)
    return base64.b64decode(raw).decode().strip() if raw else ""


def _regarding(model: InferenceModel) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": model.metadata.to_wire()}
