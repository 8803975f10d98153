"""Prometheus metrics of the upstream calls: requests and errors per provider, breaker states, fallbacks.

Labels name upstreams and served models, never prompt text or keys.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

UPSTREAM_REQUESTS = Counter(
    "inferflux_router_upstream_requests",
    "Calls to an upstream (provider or runtime) by outcome code ('ok' on success).",
    ["provider", "upstream", "code"],
)
UPSTREAM_ERRORS = Counter(
    "inferflux_router_upstream_errors",
    "Failed upstream calls by normalised error code.",
    ["provider", "code"],
)
BREAKER_STATE = Gauge(
    "inferflux_router_breaker_state",
    "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open.",
    ["upstream"],
)
BREAKER_SKIPS = Counter(
    "inferflux_router_breaker_skips",
    "Chain links skipped because their breaker was open or held.",
    ["upstream"],
)
FALLBACKS = Counter(
    "inferflux_router_fallbacks",
    "Requests that fell through from one served model to the next in its chain.",
    ["from_model", "to_model", "code"],
)
