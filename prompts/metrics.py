"""Prometheus metrics of the prompts package, all named ``inferflux_prompts_*``.

Labels carry no prompt text and no variables: only bounded values (outcome, reason, verdict).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RESOLVE_SECONDS = Histogram(
    "inferflux_prompts_resolve_seconds",
    "Time to resolve and render a prompt.",
    ["outcome"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1),
)
CACHE_TOTAL = Counter("inferflux_prompts_cache_total", "Resolver cache lookups.", ["result"])
FALLBACK_TOTAL = Counter(
    "inferflux_prompts_fallback_total",
    "Resolves answered by the embedded fallback or a stale copy instead of a fresh prompt.",
    ["reason"],
)
LOADED = Gauge("inferflux_prompts_loaded", "Prompts held warm by the resolver.")
UPDATES_TOTAL = Counter("inferflux_prompts_updates_total", "Prompt changes applied without restart.")
REJECTED_TOTAL = Counter("inferflux_prompts_rejected_total", "Prompts a source refused to serve.", ["reason"])
SANITISED_TOTAL = Counter(
    "inferflux_prompts_sanitised_total", "User texts checked for injection, by verdict.", ["verdict"]
)

# Children bound once: ``labels()`` costs more than the increment on the warm path.
CACHE_HIT = CACHE_TOTAL.labels(result="hit")
CACHE_MISS = CACHE_TOTAL.labels(result="miss")
RESOLVE_WARM = RESOLVE_SECONDS.labels(outcome="warm")
SANITISED = {
    verdict: SANITISED_TOTAL.labels(verdict=verdict) for verdict in ("allow", "sanitised", "blocked")
}
