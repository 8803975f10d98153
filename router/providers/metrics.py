"""Prometheus metrics of the upstream calls: requests and errors per provider, breaker states, fallbacks.

They register into the registry the router exposes on ``/metrics`` (its ``Metrics.registry``), or a
fresh one, so two chains in one process (tests, apps) never collide. Labels name providers,
upstreams and served models, never prompt text or keys.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from inferflux.router.labelled import Counter, Gauge

PREFIX = "inferflux_router_"


class ProviderMetrics:
    """Every metric of the provider layer, in one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            PREFIX + "provider_requests",
            "Calls to an upstream (provider or runtime) by outcome code ('ok' on success).",
            ["provider", "upstream", "code"],
            registry=r,
        )
        self.errors = Counter(
            PREFIX + "provider_errors",
            "Failed upstream calls by provider and normalised error code.",
            ["provider", "code"],
            registry=r,
        )
        self.breaker_state = Gauge(
            PREFIX + "breaker_state",
            "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open.",
            ["upstream"],
            registry=r,
        )
        self.breaker_skips = Counter(
            PREFIX + "breaker_skips",
            "Chain links skipped because their breaker was open or held.",
            ["upstream"],
            registry=r,
        )
        self.fallbacks = Counter(
            PREFIX + "fallbacks",
            "Requests that fell through from one served model to the next in its chain.",
            ["from_model", "to_model", "code"],
            registry=r,
        )
