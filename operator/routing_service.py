"""Publish the routing table (and the router's provider egress policy) whenever what they show changes.

Any model, Deployment or pod event calls ``request()``; one background task coalesces the bursts
(a rollout of 200 models is a few writes, not thousands), rebuilds both documents from the cache
and applies each only when its content changed since the last write.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import ValidationError

from inferflux.crds.inferencemodel import InferenceModel
from inferflux.operator.cache import ClusterCache
from inferflux.operator.networkpolicy import render_router_provider_egress
from inferflux.operator.render.routing import build_routing_table, render_routing_configmap
from inferflux.operator.settings import Settings
from inferflux.operator.storage import Storage
from inferflux.operator.workqueue import backoff

log = logging.getLogger(__name__)

COALESCE_SECONDS = 0.2


def parsed_models(cache: ClusterCache) -> list[InferenceModel]:
    """Every cached model that parses (one that does not is reported Stalled by its reconcile)."""
    models = []
    for key in cache.models:
        try:
            model = cache.models.parsed(key, InferenceModel.from_body)
        except ValidationError:
            continue
        if model is not None:
            models.append(model)
    return models


class RoutingPublisher:
    """Keeps the ``inferflux-routing`` ConfigMap equal to the table built from the cache."""

    def __init__(self, storage: Storage, cache: ClusterCache, settings: Settings) -> None:
        self._storage = storage
        self._cache = cache
        self._settings = settings
        self._wanted = asyncio.Event()
        self._published: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None

    def request(self) -> None:
        """Ask for a rebuild soon; many requests in a burst give one rebuild."""
        self._wanted.set()

    def documents(self) -> list[dict[str, Any]]:
        """The objects to publish, from the current cache."""
        models = parsed_models(self._cache)
        table = build_routing_table(models, self._cache.pods.values())
        settings = self._settings
        return [
            render_routing_configmap(table, settings.routing_configmap, settings.operator_namespace),
            render_router_provider_egress(models, settings.network),
        ]

    async def publish(self) -> int:
        """Apply the documents that changed since the last write; returns how many were written."""
        written = 0
        for document in self.documents():
            name = f"{document['kind']}/{document['metadata']['name']}"
            if self._published.get(name) != document:
                await self._storage.apply(document)
                self._published[name] = document
                written += 1
        return written

    async def _loop(self) -> None:
        failures = 0
        while True:
            await self._wanted.wait()
            await asyncio.sleep(COALESCE_SECONDS)
            self._wanted.clear()
            try:
                await self.publish()
                failures = 0
            except Exception as error:
                failures += 1
                log.warning("publishing the routing table failed (%s); retrying", error)
                await asyncio.sleep(backoff(failures))
                self._wanted.set()

    def start(self) -> None:
        """Start the publishing task."""
        self._task = asyncio.create_task(self._loop(), name="routing-publisher")
        self.request()

    async def stop(self) -> None:
        """Stop the publishing task."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
