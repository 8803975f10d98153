"""Reconcile one Tenant's status: published for the router, waiting to be, or refused and why.

The operator watches Tenants in its own namespace only, and not at all elsewhere (the watch is
namespaced, and so is its RBAC): whoever can write a Tenant grants scopes on every model it lists,
so that right must stay with whoever administers the InferFlux installation, not with anyone who
may create objects in some team's namespace.

The snapshot itself is compiled and published by `PolicyPublisher`; a Tenant is ``Ready`` once the
publication holds its current generation, ``Stalled`` when it was left out (``InvalidName``,
``InvalidSpec``) or cut down (``SubjectConflict``), and ``Progressing`` in between.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from inferflux.crds.meta import Condition, ConditionType, ObjectMeta
from inferflux.crds.policy import CONFIGMAP_NAME
from inferflux.crds.tenant import KIND, Tenant, TenantStatus
from inferflux.operator.cache import ClusterCache, Key
from inferflux.operator.policy_service import Outcome, PolicyPublisher
from inferflux.operator.reporter import report_status
from inferflux.operator.status import OK, RECONCILING, Stall, Verdict, apply_verdicts
from inferflux.operator.storage import Storage

log = logging.getLogger(__name__)

INVALID_SPEC = "InvalidSpec"
PUBLISHED = "Published"
PUBLISHING = "Publishing"
# Status fields the router writes (spend against the budget), which the operator must leave alone.
ROUTER_OWNED = frozenset({"budget"})


def tenant_conditions(
    previous: Sequence[Condition],
    generation: int,
    stall: Stall | None,
    published: bool,
    at: dt.datetime | None = None,
) -> list[Condition]:
    """Ready/Stalled/Progressing/Reconciling of a Tenant after one reconcile."""
    verdicts: dict[str, Verdict]
    if stall is not None:
        verdicts = {
            ConditionType.READY: ("False", stall.reason, stall.message),
            ConditionType.STALLED: ("True", stall.reason, stall.message),
            ConditionType.PROGRESSING: ("False", stall.reason, ""),
        }
    elif published:
        verdicts = {
            ConditionType.READY: ("True", PUBLISHED, "published in the policy snapshot the router reads"),
            ConditionType.STALLED: ("False", OK, ""),
            ConditionType.PROGRESSING: ("False", PUBLISHED, ""),
        }
    else:
        waiting = "waiting for the policy snapshot to include this generation"
        verdicts = {
            ConditionType.READY: ("False", PUBLISHING, waiting),
            ConditionType.STALLED: ("False", OK, ""),
            ConditionType.PROGRESSING: ("True", PUBLISHING, waiting),
        }
    verdicts[RECONCILING] = verdicts[ConditionType.PROGRESSING]
    return apply_verdicts(previous, verdicts, generation, at)


def tenant_status(
    previous: TenantStatus, generation: int, outcome: Outcome | None, configmap: str
) -> TenantStatus:
    """The status of a Tenant that parses, given what the last publication made of it."""
    current = outcome is not None and outcome.generation == generation
    problem = outcome.problem if outcome is not None and current else None
    stall = Stall(problem.reason, problem.message) if problem is not None else None
    in_snapshot = current and (problem is None or problem.published)
    return TenantStatus(
        observed_generation=generation,
        conditions=tenant_conditions(previous.conditions, generation, stall, current and stall is None),
        policy_config_map=configmap if in_snapshot else None,
    )


def invalid_status(previous: TenantStatus, generation: int, error: ValidationError) -> TenantStatus:
    """The status of a Tenant the API types refuse (the CRD schema let through what pydantic does not)."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
        for e in error.errors()
    )
    stall = Stall(INVALID_SPEC, f"left out of the policy snapshot: {problems}")
    return TenantStatus(
        observed_generation=generation,
        conditions=tenant_conditions(previous.conditions, generation, stall, published=False),
    )


def _previous_status(body: dict[str, Any]) -> TenantStatus:
    try:
        return TenantStatus.model_validate(body.get("status") or {})
    except ValidationError:
        return TenantStatus()


class TenantService:
    """Reports what the policy publication made of each Tenant."""

    def __init__(self, storage: Storage, cache: ClusterCache, publisher: PolicyPublisher) -> None:
        self._storage = storage
        self._cache = cache
        self._publisher = publisher

    async def reconcile(self, key: Key) -> float | None:
        """Write ``key``'s status; the ConfigMap entry goes with the Tenant on the next publication."""
        body = self._cache.tenants.get(key)
        if body is None:
            return None
        metadata = ObjectMeta.model_validate(body.get("metadata") or {})
        previous = _previous_status(body)
        try:
            tenant = self._cache.tenants.parsed(key, Tenant.from_body)
        except ValidationError as error:
            log.warning("tenant %s/%s does not parse: %d problems", *key, error.error_count())
            status = invalid_status(previous, metadata.generation, error)
        else:
            if tenant is None:
                return None
            outcome = self._publisher.outcomes.get(tenant.metadata.name)
            configmap = f"{self._publisher.namespace}/{CONFIGMAP_NAME}"
            status = tenant_status(previous, metadata.generation, outcome, configmap)
        await report_status(self._storage, KIND, metadata, previous, status, ROUTER_OWNED)
        return None
