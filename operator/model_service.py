"""Reconcile one InferenceModel: validate, apply its objects, and report status and Events.

Level-based: it looks only at the model's latest body and its Deployment in the cache, never at
what changed, so running it twice, late, or after a restart converges to the same objects.
Unchanged objects are not re-sent; unchanged status is not re-written.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from inferflux.crds.inferencemodel import KIND, Engine, InferenceModel
from inferflux.operator.bluegreen import DRAINING, Plan, plan
from inferflux.operator.cache import ClusterCache, Key
from inferflux.operator.inplace import InPlaceSwapper
from inferflux.operator.networkpolicy import render_network_policies
from inferflux.operator.render.deployment import render_deployment
from inferflux.operator.render.labels import (
    owned_by,
    pod_revision,
    revision_hash,
    selector_labels,
    served_revision,
    swapped_from,
)
from inferflux.operator.render.service import new_admin_token, render_admin_secret, render_service
from inferflux.operator.render.weights import render_weights_configmap, weights_configmap_of
from inferflux.operator.reporter import report_status
from inferflux.operator.revisions import (
    RETIRED_AT,
    model_deployments,
    pod_revision_for,
    revision_state,
    rolled_back_already,
)
from inferflux.operator.scaling import Activity, Decision, desired_replicas
from inferflux.operator.settings import Settings
from inferflux.operator.status import Stall, compute_status
from inferflux.operator.storage import Storage
from inferflux.operator.validation import (
    INVALID_SPEC,
    RECHECKED,
    referenced_secrets,
    secret_stall,
    signature_stall,
    spec_stall,
)
from inferflux.operator.workqueue import REQUEUE_LATER, Later

log = logging.getLogger(__name__)

SECRET_RECHECK_SECONDS = 15.0
DRIFT_GRACE_SECONDS = 5.0
DRAIN_SECONDS = 10.0  # an old revision keeps its pods this long after traffic left it


@dataclass(frozen=True)
class Applied:
    """What this process last applied for a model, so unchanged specs are not re-sent."""

    uid: str
    generation: int
    revision: str
    at: float
    stall: Stall | None
    complete: bool = True  # False until the Service, policies and token are applied too
    replicas: int | None = None  # what the Deployment was applied with (operator/scaling.py decides)


def _drifted(deployment: dict[str, Any] | None, revision: str, replicas: int) -> bool:
    """The Deployment is gone, or no longer what was applied."""
    if deployment is None:
        return True
    spec = deployment.get("spec") or {}
    return served_revision(deployment) != revision or spec.get("replicas") != replicas


class ModelService:
    """Turns InferenceModels into runtime objects and status."""

    def __init__(self, storage: Storage, cache: ClusterCache, settings: Settings) -> None:
        self._storage = storage
        self._cache = cache
        self._settings = settings
        self._applied: dict[Key, Applied] = {}
        self._scaled: dict[Key, Decision] = {}
        self._inplace = InPlaceSwapper(storage, cache, settings)

    async def reconcile(self, key: Key) -> float | Later | None:
        """Bring ``key``'s objects and status up to date; returns when to look again, if ever."""
        body = self._cache.models.get(key)
        if body is None:
            self._applied.pop(key, None)  # deleted: owner references let the GC remove the rest
            self._scaled.pop(key, None)
            return None
        try:
            model = self._cache.models.parsed(key, InferenceModel.from_body) or InferenceModel.from_body(body)
        except ValidationError as error:
            await self._report_invalid(body, error)
            return None
        revision = revision_hash(model)
        deployments, leftovers = model_deployments(self._cache.deployments.values(), model)
        decision = self._scale(key, model, deployments.get(revision))
        # From here on the model's replicas are the decided ones: the Deployment, the drift check
        # and the status (Ready with reason ScaledToZero at 0) all read them.
        model = model.model_copy(
            update={"spec": model.spec.model_copy(update={"replicas": decision.replicas})}
        )
        again = await self._converge(key, model, revision, deployments, leftovers)
        if decision.recheck is None or isinstance(again, Later):
            return again
        return decision.recheck if again is None else min(again, decision.recheck)

    def _scale(self, key: Key, model: InferenceModel, deployment: dict[str, Any] | None) -> Decision:
        """The replicas operator/scaling.py decides from the routers' reports; logged when they change."""
        current = ((deployment or {}).get("spec") or {}).get("replicas")
        previous = self._scaled.get(key)
        now = time.time()
        decision = desired_replicas(
            model,
            Activity.of(model.metadata.annotations, now),
            now,
            current if isinstance(current, int) else None,
            previous.low_since if previous else None,
            self._settings.idle_cap_seconds,
        )
        self._scaled[key] = decision
        changed = previous is not None and previous.replicas != decision.replicas
        if changed:
            namespace, name = model.metadata.namespace, model.metadata.name
            log.info("scaling %s/%s to %d replicas (%s)", namespace, name, decision.replicas, decision.reason)
        return decision

    async def _converge(
        self,
        key: Key,
        model: InferenceModel,
        revision: str,
        deployments: dict[str, dict[str, Any]],
        leftovers: list[dict[str, Any]],
    ) -> float | Later | None:
        applied = self._applied.get(key)
        deployment = deployments.get(revision)
        step = self._plan(model, revision, deployments)
        wanted = step is None or step.apply_wanted
        if applied is None or self._needs_apply(model, revision, applied, deployment, wanted):
            before = deployments.get(step.active) if step and step.active and deployment is None else None
            applied = self._applied[key] = await self._apply_workload(
                model, revision, wanted, before, deployment
            )
            if not applied.complete:
                return REQUEUE_LATER
        if not applied.complete:
            await self._apply_companions(model)
            applied = self._applied[key] = dataclasses.replace(applied, complete=True)
        serving = deployments.get(step.active) if step and step.active else deployment
        await self._write_status(model, revision, serving, applied.stall, None if applied.stall else step)
        if step is not None and applied.stall is None:
            await self._clean_up(model, step, deployments)
            await self._remove_leftovers(model, deployments, leftovers)
        if applied.stall and applied.stall.reason in RECHECKED:
            return SECRET_RECHECK_SECONDS
        if step is not None and (step.retire or step.phase == DRAINING):
            return DRAIN_SECONDS / 2
        if (
            wanted
            and model.spec.engine != Engine.PROVIDER
            and _drifted(deployment, revision, model.spec.replicas)
        ):
            return DRIFT_GRACE_SECONDS
        return None

    def _plan(
        self, model: InferenceModel, revision: str, deployments: dict[str, dict[str, Any]]
    ) -> Plan | None:
        """The blue/green step for a model with pods, from its Deployments and status."""
        if model.spec.engine == Engine.PROVIDER:
            return None
        pods = list(self._cache.pods.values())
        desired = model.spec.replicas
        states = {rev: revision_state(body, rev, desired, pods, model) for rev, body in deployments.items()}
        rollout = model.spec.rollout
        return plan(
            revision,
            model.status.active_revision,
            states,
            time.time(),
            DRAIN_SECONDS,
            rollout.auto_rollback,
            rolled_back_already(model),
        )

    async def _remove_leftovers(
        self, model: InferenceModel, deployments: dict[str, dict[str, Any]], leftovers: list[dict[str, Any]]
    ) -> None:
        """Delete a duplicate Deployment of a revision once that revision's own Deployment is Ready."""
        pods = list(self._cache.pods.values())
        for body in leftovers:
            revision = served_revision(body)
            if revision_state(deployments[revision], revision, model.spec.replicas, pods, model).ready:
                await self._delete_deployment(model, body)

    async def _clean_up(
        self, model: InferenceModel, step: Plan, deployments: dict[str, dict[str, Any]]
    ) -> None:
        """Start the drain clock of revisions traffic left; delete the drained and the rolled back."""
        namespace = model.metadata.namespace or ""
        now = {RETIRED_AT: f"{time.time():.3f}"}
        for rev in step.retire:
            await self._storage.annotate("Deployment", namespace, deployments[rev]["metadata"]["name"], now)
        for rev in step.delete:
            await self._delete_deployment(model, deployments[rev])
            log.info("deleted revision %s of %s/%s (%s)", rev, namespace, model.metadata.name, step.phase)

    async def _delete_deployment(self, model: InferenceModel, body: dict[str, Any]) -> None:
        """Delete a revision's Deployment and the weights ConfigMap its pods read (that one first:
        a crash in between leaves the Deployment, which the next pass deletes again)."""
        namespace = model.metadata.namespace or ""
        configmap = weights_configmap_of(body)
        if configmap:
            await self._storage.delete("ConfigMap", namespace, configmap)
        await self._storage.delete("Deployment", namespace, body["metadata"]["name"])

    def _needs_apply(
        self,
        model: InferenceModel,
        revision: str,
        applied: Applied,
        deployment: dict[str, Any] | None,
        wanted: bool,
    ) -> bool:
        if (applied.uid, applied.generation) != (model.metadata.uid or "", model.metadata.generation):
            return True
        if wanted and applied.stall is None and applied.replicas != model.spec.replicas:
            return True  # scaled (to zero, back, or by the scaler): no spec change, no grace period
        age = time.monotonic() - applied.at
        if applied.stall is not None:
            return applied.stall.reason in RECHECKED and age >= SECRET_RECHECK_SECONDS
        pods = wanted and model.spec.engine != Engine.PROVIDER
        return pods and age >= DRIFT_GRACE_SECONDS and _drifted(deployment, revision, model.spec.replicas)

    async def _stall(self, model: InferenceModel) -> Stall | None:
        stall = spec_stall(model, self._settings)
        namespace = model.metadata.namespace or ""
        for ref in [] if stall else referenced_secrets(model):
            secret = await self._storage.get("Secret", namespace, ref.name)
            stall = secret_stall(ref, namespace, secret)
            if stall is None and secret is not None:
                stall = signature_stall(model, ref, secret)
            if stall:
                break
        return stall

    async def _apply_workload(
        self,
        model: InferenceModel,
        revision: str,
        wanted: bool = True,
        active: dict[str, Any] | None = None,
        target: dict[str, Any] | None = None,
    ) -> Applied:
        """Check the spec, then apply the Deployment (and its weights ConfigMap) alone: the rest
        follows on the next pass.

        ``active`` is the serving revision's Deployment when none serves ``revision`` yet (an
        in-place swap is tried first), ``target`` the one that serves it already, if any (its pod
        revision label is kept, so a Deployment swapped in place is not rolled).

        Under a burst of new models this orders the API server's work so that every model's
        Deployment (and so its pods) comes before the objects that can wait: the Service, the
        NetworkPolicy, the admin token and the status.
        """
        stall = await self._stall(model)
        pods = stall is None and model.spec.engine != Engine.PROVIDER
        uid, generation = model.metadata.uid or "", model.metadata.generation
        if pods and wanted and active is not None:  # a new revision beside a serving one: in place first?
            recorded = await self._inplace.attempt(model, active)
            if recorded is not None:
                # Read our own write: the next pass plans from the recorded Deployment even if
                # its watch event is still on the way (the event then replaces this body).
                self._cache.deployments.observe("MODIFIED", recorded)
                return Applied(uid, generation, revision, time.monotonic(), stall, False, model.spec.replicas)
        if pods and wanted:
            if target is not None:
                label, previous = pod_revision(target), swapped_from(target)
            else:
                label, previous = pod_revision_for(revision, self._cache.deployments.values(), model), ""
            if model.spec.engine == Engine.LLAMACPP:  # before the Deployment: its pods read it at start
                await self._storage.apply(
                    render_weights_configmap(model, label, self._settings.runtime_image)
                )
            # Server-side apply even for a new Deployment: a plain create would leave its fields
            # co-owned by an Update entry, and fields later dropped from the spec would stay.
            await self._storage.apply(render_deployment(model, self._settings, label, previous))
            log.info("applied %s/%s revision %s", model.metadata.namespace, model.metadata.name, revision)
        return Applied(uid, generation, revision, time.monotonic(), stall, not pods, model.spec.replicas)

    async def _apply_companions(self, model: InferenceModel) -> None:
        """The Service, NetworkPolicies and (llama.cpp) admin-token Secret of a model with pods."""
        writes: list[Awaitable[object]] = [self._storage.apply(render_service(model))]
        policies = render_network_policies(model, selector_labels(model), self._settings.network)
        writes += [self._storage.apply(owned_by(policy, model)) for policy in policies]
        if model.spec.engine == Engine.LLAMACPP:
            writes.append(self._storage.create_if_missing(render_admin_secret(model, new_admin_token())))
        await asyncio.gather(*writes)

    async def _write_status(
        self,
        model: InferenceModel,
        revision: str,
        deployment: dict[str, Any] | None,
        stall: Stall | None,
        step: Plan | None,
    ) -> None:
        status = compute_status(model, revision, deployment, stall, plan=step)
        await report_status(self._storage, KIND, model.metadata, model.status, status)

    async def _report_invalid(self, body: dict[str, Any], error: ValidationError) -> None:
        """A body the API types reject (the CRD schema should prevent it): Stalled, with the first error."""
        meta = body.get("metadata") or {}
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = f"spec is invalid at {where}: {first.get('msg', '')}"[:1024]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        conditions = [
            {"type": t, "status": s, "reason": INVALID_SPEC, "message": message, "lastTransitionTime": now}
            for t, s in (("Ready", "False"), ("Stalled", "True"))
        ]
        status = {"observedGeneration": meta.get("generation"), "conditions": conditions}
        old = (body.get("status") or {}).get("conditions") or []
        if [(c.get("type"), c.get("message")) for c in old] != [(c["type"], message) for c in conditions]:
            await self._storage.patch_status(KIND, meta.get("namespace", ""), meta.get("name", ""), status)
