"""Wire the operator together: settings, the API client, the cache, the services and their queues.

Also the kopf settings that keep kopf's own traces off our objects: standalone (no peering
resources), and the ``inferflux.io/`` prefix for any finalizer or annotation kopf might write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import kopf
from kubernetes_asyncio import client

from inferflux.operator.cache import ClusterCache, Key
from inferflux.operator.model_service import ModelService
from inferflux.operator.policy_service import PolicyPublisher
from inferflux.operator.prompt_service import PromptService
from inferflux.operator.render.labels import FIELD_MANAGER, MANAGED_BY
from inferflux.operator.routing_service import RoutingPublisher
from inferflux.operator.settings import Settings
from inferflux.operator.storage import NamespaceTerminating, Storage
from inferflux.operator.tenant_service import TenantService
from inferflux.operator.tenant_watch import TenantWatch
from inferflux.operator.workqueue import Later, Reconcile, WorkQueue

PREFIX = "inferflux.io"
OWNED_SELECTOR = f"{MANAGED_BY}={FIELD_MANAGER},inferflux.io/model"
MODEL_WORKERS = 64
PROMPT_WORKERS = 4
TENANT_WORKERS = 2


class WatchOnlyDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf's diff base for change handlers, which this operator has none of.

    kopf builds it for every watch event (a deep copy of the body) only to detect changes for
    ``on.create``/``on.update`` handlers; with watch-event handlers alone it is never read, so
    building an empty one saves most of kopf's per-event CPU.
    """

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None


def kopf_settings(ours: Settings) -> kopf.OperatorSettings:
    """kopf configured for InferFlux: our prefixes, no peering, no events of its own."""
    settings = kopf.OperatorSettings()
    # Watching named namespaces, the namespaced RBAC grants no cluster-wide list of namespaces;
    # kopf would retry that list for half a minute before serving the names it was given.
    settings.scanning.disabled = not ours.clusterwide
    settings.peering.standalone = True
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = WatchOnlyDiffBase(prefix=PREFIX, key="last-handled-configuration")
    settings.posting.enabled = False  # our services post the Events users need
    # Only our own Deployments and runtime pods are streamed, not every one in the cluster.
    settings.watching.label_selectors["apps", "v1", "deployments"] = OWNED_SELECTOR
    settings.watching.label_selectors["", "v1", "pods"] = OWNED_SELECTOR
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    return settings


@dataclass
class Operator:
    """The running parts of one operator process."""

    settings: Settings
    cache: ClusterCache
    storage: Storage
    models: WorkQueue[Key]
    prompts: WorkQueue[Key]
    routing: RoutingPublisher
    tenants: WorkQueue[Key]
    policy: PolicyPublisher
    tenant_watch: TenantWatch

    def start(self) -> None:
        """Start the queue workers, the publishers and the tenant watch on the running loop."""
        self.models.start()
        self.prompts.start()
        self.routing.start()
        self.tenants.start()
        self.policy.start()
        self.tenant_watch.start()

    async def stop(self) -> None:
        """Stop every background task."""
        await self.tenant_watch.stop()
        await self.models.stop()
        await self.prompts.stop()
        await self.routing.stop()
        await self.tenants.stop()
        await self.policy.stop()


def quiet_in_terminating_namespaces(reconcile: Reconcile[Key]) -> Reconcile[Key]:
    """``reconcile``, except that a write refused because the namespace is being deleted ends the
    pass without a retry: the object goes with its namespace, there is nothing left to do."""

    async def reconcile_unless_terminating(key: Key) -> float | Later | None:
        try:
            return await reconcile(key)
        except NamespaceTerminating:
            return None

    return reconcile_unless_terminating


def build_operator(settings: Settings, api: client.ApiClient) -> Operator:
    """An Operator talking to the cluster through ``api``."""
    cache = ClusterCache()
    storage = Storage(api)
    model_service = ModelService(storage, cache, settings)
    prompt_service = PromptService(storage, cache)
    policy = PolicyPublisher(storage, cache, settings.operator_namespace)
    tenants = WorkQueue("tenants", TenantService(storage, cache, policy).reconcile, TENANT_WORKERS)
    policy.on_outcome = tenants.add  # a Tenant whose publication changed gets its status rewritten
    return Operator(
        settings=settings,
        cache=cache,
        storage=storage,
        models=WorkQueue("models", quiet_in_terminating_namespaces(model_service.reconcile), MODEL_WORKERS),
        prompts=WorkQueue(
            "prompts", quiet_in_terminating_namespaces(prompt_service.reconcile), PROMPT_WORKERS
        ),
        routing=RoutingPublisher(storage, cache, settings),
        tenants=tenants,
        policy=policy,
        tenant_watch=TenantWatch(api, settings.operator_namespace, cache.tenants),
    )
