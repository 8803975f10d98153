"""InferenceModel status as a pure function of what the operator observed.

The conditions follow the Kubernetes API conventions and what kstatus (Flux), Helm ``--wait`` and
Argo CD read (see docs/operator.md): ``Ready`` is the summary (Unknown until the first rollout
settles, True only while Ready pods serve), ``Progressing``/``Reconciling`` while a rollout runs,
``Degraded`` when serving but unhealthy, ``Stalled`` when waiting cannot help. ``lastTransitionTime``
moves only when a condition's status changes (``set_condition``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inferflux.crds.inferencemodel import Engine, InferenceModel, InferenceModelStatus
from inferflux.crds.meta import Condition, ConditionStatus, ConditionType, find_condition, set_condition
from inferflux.operator.bluegreen import COMPLETED, Plan
from inferflux.operator.render.labels import selector_labels, served_revision
from inferflux.operator.render.service import endpoint_url

RECONCILING = "Reconciling"
OK = "AsExpected"
ROLLED_OUT = "NewReplicaSetAvailable"


@dataclass(frozen=True)
class Stall:
    """A terminal spec error: retrying will not help until the user changes something."""

    reason: str
    message: str


@dataclass(frozen=True)
class Rollout:
    """The facts about a Deployment that the conditions depend on."""

    desired: int
    ready: int
    updated: int
    current: int
    complete: bool
    deadline_exceeded: bool

    @classmethod
    def of(cls, deployment: dict[str, Any], revision: str, desired: int) -> Rollout:
        """Read a Deployment for the expected revision (the one its pods serve, swapped in place or not).

        A rollout is complete once the Deployment controller says its new ReplicaSet became
        available (``NewReplicaSetAvailable``); pods failing later make the model Degraded, not
        Progressing again.
        """
        meta, spec, status = (deployment.get(k) or {} for k in ("metadata", "spec", "status"))
        observed = status.get("observedGeneration", 0) >= meta.get("generation", 1)
        updated = status.get("updatedReplicas", 0)
        current = status.get("replicas", 0)
        reasons = {c.get("type"): c.get("reason") for c in status.get("conditions") or []}
        complete = (
            observed
            and served_revision(deployment) == revision
            and spec.get("replicas") == desired
            and updated == desired
            and current == desired
            and (desired == 0 or reasons.get("Progressing") == ROLLED_OUT)
        )
        deadline = reasons.get("Progressing") == "ProgressDeadlineExceeded"
        return cls(desired, status.get("readyReplicas", 0), updated, current, complete, deadline)


Verdict = tuple[ConditionStatus, str, str]


def _ready(rollout: Rollout | None, previous: Condition | None, wakes: bool = False) -> Verdict:
    if rollout is None or (rollout.ready == 0 and rollout.desired > 0):
        if rollout is not None and rollout.deadline_exceeded:
            return "False", "ProgressDeadlineExceeded", "no runtime pod became Ready before the deadline"
        if previous is None or previous.status == "Unknown":
            return "Unknown", "Initializing", "waiting for the first runtime pod to become Ready"
        return "False", "NoReadyReplicas", "no runtime pod is Ready"
    if rollout.desired == 0:
        if wakes:
            return "True", "ScaledToZero", "scaled to zero while idle; the first request activates it"
        return "True", "ScaledToZero", "spec.replicas is 0"
    return "True", "Serving", f"{rollout.ready}/{rollout.desired} runtime pods Ready"


def _progressing(rollout: Rollout | None) -> Verdict:
    if rollout is not None and rollout.deadline_exceeded:
        return "False", "ProgressDeadlineExceeded", "the rollout did not finish in progressDeadlineSeconds"
    if rollout is None or not rollout.complete:
        done = f"{rollout.updated}/{rollout.desired}" if rollout else "0"
        return "True", "RollingOut", f"{done} runtime pods updated"
    return "False", "RolloutComplete", "all runtime pods run the active revision"


def _degraded(rollout: Rollout | None) -> Verdict:
    if rollout is not None and rollout.deadline_exceeded:
        return "True", "ProgressDeadlineExceeded", "the rollout did not finish in progressDeadlineSeconds"
    if rollout is not None and rollout.complete and 0 < rollout.ready < rollout.desired:
        return "True", "ReplicasUnavailable", f"only {rollout.ready}/{rollout.desired} runtime pods Ready"
    return "False", OK, ""


def _verdicts(
    model: InferenceModel, rollout: Rollout | None, stall: Stall | None, previous: Condition | None
) -> dict[str, Verdict]:
    """Status, reason and message of every condition type."""
    if stall is not None:
        return {
            ConditionType.READY: ("False", stall.reason, stall.message),
            ConditionType.STALLED: ("True", stall.reason, stall.message),
            ConditionType.PROGRESSING: ("False", stall.reason, "fix the spec to continue"),
            RECONCILING: ("False", stall.reason, "fix the spec to continue"),
            ConditionType.DEGRADED: ("False", OK, ""),
        }
    if model.spec.engine == Engine.PROVIDER:
        provider = model.spec.provider
        model_id = (provider.model if provider else None) or "(model id from the router's environment)"
        name = f"{provider.name}/{model_id}" if provider else "provider"
        done: Verdict = ("False", "Configured", "")
        return {
            ConditionType.READY: ("True", "ProviderConfigured", f"routed to {name}"),
            ConditionType.STALLED: ("False", OK, ""),
            ConditionType.PROGRESSING: done,
            RECONCILING: done,
            ConditionType.DEGRADED: ("False", OK, ""),
        }
    progressing = _progressing(rollout)
    ready = _ready(rollout, previous, model.spec.scale_to_zero.enabled)
    deadline = rollout is not None and rollout.deadline_exceeded and ready[0] != "True"
    return {
        ConditionType.READY: ready,
        ConditionType.STALLED: ("True", *ready[1:]) if deadline else ("False", OK, ""),
        ConditionType.PROGRESSING: progressing,
        RECONCILING: progressing,
        ConditionType.DEGRADED: _degraded(rollout),
    }


PHASE_MESSAGES = {
    "CandidateStarting": "the candidate revision's pods are starting; traffic stays on the active one",
    "TrafficSwitched": "every candidate pod is Ready; traffic moved to it",
    "Draining": "the previous revision drains before it is deleted",
    "RolledBack": "the candidate revision was removed; traffic stayed on the active one",
    "CandidateFailed": "the candidate revision failed and is kept for inspection (autoRollback is off)",
}


def _swap_verdicts(plan: Plan, verdicts: dict[str, Verdict]) -> dict[str, Verdict]:
    """Progressing names the blue/green step while a revision serves; a failed candidate degrades."""
    if plan.active is None:
        # The first rollout: the Deployment's own progress says it all, except that no pod is
        # routed before a revision is active (all its pods Ready), so Ready cannot be True yet.
        status, _reason, message = verdicts[ConditionType.READY]
        if status != "True":
            return verdicts
        return verdicts | {
            ConditionType.READY: ("False", "FirstRevisionStarting", f"{message}; traffic starts once all are")
        }
    if plan.phase == COMPLETED:
        progressing: Verdict = ("False", "RolloutComplete", "all runtime pods run the active revision")
    else:
        progressing = ("True", plan.phase, PHASE_MESSAGES.get(plan.phase, plan.phase))
    result = verdicts | {ConditionType.PROGRESSING: progressing, RECONCILING: progressing}
    if plan.failure:
        message = (
            f"candidate revision {plan.candidate} failed ({plan.failure}); revision {plan.active} serves"
        )
        result[ConditionType.DEGRADED] = ("True", plan.failure, message)
    return result


def apply_verdicts(
    previous: Sequence[Condition],
    verdicts: dict[str, Verdict],
    generation: int,
    at: dt.datetime | None = None,
) -> list[Condition]:
    """``previous`` with each condition type set to its verdict (transition times kept as they should)."""
    conditions = list(previous)
    for type_, (status, reason, message) in verdicts.items():
        conditions = set_condition(conditions, type_, status, reason, message, generation=generation, at=at)
    return conditions


def compute_status(
    model: InferenceModel,
    revision: str,
    deployment: dict[str, Any] | None,
    stall: Stall | None = None,
    at: dt.datetime | None = None,
    plan: Plan | None = None,
) -> InferenceModelStatus:
    """The status ``model`` should have, given the Deployment serving it (None if absent) and any
    terminal error; with a blue/green ``plan``, ``deployment`` is the active revision's."""
    previous = model.status
    generation = model.metadata.generation
    if plan is not None and plan.active is not None:
        revision = plan.active
    rollout = Rollout.of(deployment, revision, model.spec.replicas) if deployment is not None else None
    conditions = list(previous.conditions)
    verdicts = _verdicts(model, rollout, stall, find_condition(conditions, ConditionType.READY))
    if plan is not None and stall is None and model.spec.engine != Engine.PROVIDER:
        verdicts = _swap_verdicts(plan, verdicts)
    conditions = apply_verdicts(conditions, verdicts, generation, at)
    active = previous.active_revision
    if model.spec.engine != Engine.PROVIDER and rollout is not None and (rollout.complete or not active):
        active = revision
    candidate = revision if active != revision else None
    if plan is not None:
        active, candidate = plan.active, plan.candidate
    serves_pods = model.spec.engine != Engine.PROVIDER
    selector = ",".join(f"{k}={v}" for k, v in selector_labels(model).items())
    return InferenceModelStatus(
        observed_generation=generation,
        conditions=conditions,
        active_revision=active if serves_pods else None,
        candidate_revision=candidate if serves_pods else None,
        endpoint=endpoint_url(model) if serves_pods else None,
        served_name=model.served_name,
        replicas=rollout.current if rollout else 0,
        ready_replicas=rollout.ready if rollout else 0,
        updated_replicas=rollout.updated if rollout else 0,
        selector=selector if serves_pods else "",
    )
