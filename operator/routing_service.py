"""Publish the routing table (and the router's provider egress policy) whenever what they show changes.

Any model, Deployment or pod event calls ``request()``; the `Publisher` coalesces the bursts and
rewrites each document only when its content changed.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from inferflux.crds.inferencemodel import InferenceModel
from inferflux.operator.cache import ClusterCache
from inferflux.operator.networkpolicy import render_router_provider_egress
from inferflux.operator.publisher import Publisher
from inferflux.operator.render.routing import build_routing_table, render_routing_configmap
from inferflux.operator.settings import Settings
from inferflux.operator.storage import Storage


def parsed_models(cache: ClusterCache) -> list[InferenceModel]:
    """Every cached model that parses (one that does not is reported Stalled by its reconcile)."""
    return cache.models.all_parsed(InferenceModel.from_body, ValidationError)


class RoutingPublisher(Publisher):
    """Keeps the ``inferflux-routing`` ConfigMap equal to the table built from the cache."""

    name = "routing table"

    def __init__(self, storage: Storage, cache: ClusterCache, settings: Settings) -> None:
        super().__init__(storage)
        self._cache = cache
        self._settings = settings

    def documents(self) -> list[dict[str, Any]]:
        """The objects to publish, from the current cache."""
        models = parsed_models(self._cache)
        table = build_routing_table(models, self._cache.pods.values(), self._cache.deployments.values())
        settings = self._settings
        return [
            render_routing_configmap(table, settings.routing_configmap, settings.operator_namespace),
            render_router_provider_egress(models, settings.network),
        ]
