"""The provider metrics share the router's registry (its /metrics) without name clashes."""

from __future__ import annotations

from inferflux.router.metrics import Metrics
from inferflux.router.providers.metrics import ProviderMetrics


def test_provider_metrics_register_next_to_the_router_metrics() -> None:
    router = Metrics()
    provider = ProviderMetrics(router.registry)
    provider.errors.labels("groq", "rate_limited").inc()
    names = {family.name for family in router.registry.collect()}
    assert {"inferflux_router_provider_errors", "inferflux_router_upstream_errors"} <= names
    sample = router.registry.get_sample_value(
        "inferflux_router_provider_errors_total", {"provider": "groq", "code": "rate_limited"}
    )
    assert sample == 1


def test_each_chain_gets_its_own_registry_by_default() -> None:
    assert ProviderMetrics().registry is not ProviderMetrics().registry
