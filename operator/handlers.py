"""kopf handlers: thin, level-based, and free of kopf's own bookkeeping on our objects.

Every handler only records the watched object in the cache and queues a reconcile of the
InferenceModel, Prompt or Tenant it belongs to; the services decide everything from the latest state.
Watch-event handlers add no finalizer (nothing blocks deletion when the operator is gone) and no
annotations; owner references let the garbage collector remove what a deleted model owned.
"""

from __future__ import annotations

from typing import Any

import kopf

from inferflux.crds.inferencemodel import PLURAL as MODELS
from inferflux.crds.meta import GROUP, VERSION
from inferflux.crds.prompt import PLURAL as PROMPTS
from inferflux.operator.cache import Key
from inferflux.operator.factory import Operator
from inferflux.operator.render.labels import FIELD_MANAGER, MANAGED_BY, MODEL_LABEL

OWNED: dict[str, Any] = {MANAGED_BY: FIELD_MANAGER, MODEL_LABEL: kopf.PRESENT}


def tenant_changed(ops: Operator, key: Key) -> None:
    """A Tenant of the operator's namespace changed (its own watch, not kopf's: see tenant_watch)."""
    ops.tenants.add(key)
    ops.policy.request()


def register(registry: kopf.OperatorRegistry, ops: Operator) -> None:
    """Register the handlers of ``ops`` on ``registry`` (no module-level global state)."""
    ops.tenant_watch.on_change(lambda key: tenant_changed(ops, key))
    ops.tenant_watch.on_synced(ops.policy.mark_synced)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """The pod's ServiceAccount in a cluster, else the kubeconfig (KUBECONFIG) outside."""
        info: kopf.ConnectionInfo | None = kopf.login_with_service_account(**kwargs)
        return info or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.event(GROUP, VERSION, MODELS, registry=registry)
    async def model_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        ops.models.add(ops.cache.models.observe(type, body))
        ops.routing.request()

    @kopf.on.event("apps", "v1", "deployments", labels=OWNED, registry=registry)
    async def deployment_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        namespace, _name = ops.cache.deployments.observe(type, body)
        ops.models.add((namespace, body["metadata"]["labels"][MODEL_LABEL]))
        ops.routing.request()  # what a Deployment's pods serve (an in-place swap) is in the table

    @kopf.on.event("", "v1", "pods", labels=OWNED, registry=registry)
    async def pod_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        ops.cache.pods.observe(type, body)
        ops.routing.request()

    @kopf.on.event(GROUP, VERSION, PROMPTS, registry=registry)
    async def prompt_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        ops.prompts.add(ops.cache.prompts.observe(type, body))
