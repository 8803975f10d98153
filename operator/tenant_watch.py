"""Follow the Tenants of the operator's namespace with a namespaced list-and-watch.

kopf watches every kind in the same namespaces (all of them, or the watched list), but Tenants count
only in the operator's own namespace (see `inferflux.operator.tenant_service`), which need not be
among the watched ones. So Tenants have their own watch, scoped to that one namespace: Tenants
elsewhere are never read, and the operator's RBAC grants them nowhere else.

Each list replaces the cache's Tenants (an object deleted while the watch was down is noticed) and
each watch event updates it; both call the handler for every key that changed. After the first list
``on_synced`` runs once, so that the policy is never published from an empty cache.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from kubernetes_asyncio import client, watch

from inferflux.crds.meta import GROUP, VERSION
from inferflux.crds.tenant import PLURAL
from inferflux.operator.cache import Key, ObjectCache
from inferflux.operator.workqueue import backoff

log = logging.getLogger(__name__)

WATCH_SECONDS = 300
Handler = Callable[[Key], None]


class TenantWatch:
    """List, then watch from the list's resourceVersion; list again after any interruption."""

    def __init__(self, api: client.ApiClient, namespace: str, cache: ObjectCache) -> None:
        self._api = api
        self.namespace = namespace
        self._cache = cache
        self._handlers: list[Handler] = []
        self._on_synced: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None

    def on_change(self, handler: Handler) -> None:
        """Call ``handler(key)`` whenever a Tenant is added, changed or deleted."""
        self._handlers.append(handler)

    def on_synced(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once the Tenants have been listed (after every list)."""
        self._on_synced.append(callback)

    def _changed(self, keys: set[Key]) -> None:
        for key in sorted(keys):
            for handler in self._handlers:
                handler(key)

    async def _list_and_watch(self, custom: client.CustomObjectsApi) -> None:
        listing: dict[str, Any] = await custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL
        )
        self._changed(self._cache.replace(listing.get("items") or []))
        for callback in self._on_synced:
            callback()
        stream = watch.Watch().stream(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            resource_version=listing["metadata"]["resourceVersion"],
            timeout_seconds=WATCH_SECONDS,
        )
        async for event in stream:
            if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                self._changed({self._cache.observe(event["type"], event["object"])})

    async def run(self) -> None:
        """Follow the Tenants until cancelled."""
        custom = client.CustomObjectsApi(self._api)
        failures = 0
        while True:
            try:
                await self._list_and_watch(custom)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the API server restarts, the watch expires: list again
                failures += 1
                log.warning("tenant watch in %s interrupted (%s); listing again", self.namespace, error)
                await asyncio.sleep(backoff(failures))

    def start(self) -> None:
        """Start following."""
        self._task = asyncio.create_task(self.run(), name="tenant-watch")

    async def stop(self) -> None:
        """Stop following."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
