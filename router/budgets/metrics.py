"""Prometheus metrics of the budget stage. Labels are bounded: reasons, outcomes, tenant names."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from inferflux.router.labelled import Counter, Gauge

PREFIX = "inferflux_router_budget"


class BudgetMetrics:
    """Counters of admissions and settlements, and the spend gauges alerts read."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self._settled: dict[str, Counter] = {}
        self._spend: dict[str, Counter] = {}
        self.refusals = Counter(
            f"{PREFIX}_refusals_total",
            "Requests refused by a rate limit, a budget or a request id in use",
            ["reason"],
            registry=r,
        )
        self.unavailable = Counter(
            f"{PREFIX}_store_unavailable_total",
            "Admissions that found Redis unreachable, by what happened (refused, fail_open)",
            ["outcome"],
            registry=r,
        )
        self.settled = Counter(
            f"{PREFIX}_settlements_total",
            "Settlements by outcome (settled, released, duplicate, queued, ...)",
            ["outcome"],
            registry=r,
        )
        self.estimated = Counter(
            f"{PREFIX}_estimated_settlements_total",
            "Streams settled on an upper estimate because they ended before their usage arrived",
            registry=r,
        )
        self.spend = Counter(
            f"{PREFIX}_spend_total", "Money charged, in the pricing file's currency", ["tenant"], registry=r
        )
        self.used_ratio = Gauge(
            f"{PREFIX}_used_ratio",
            "Spent share of a tenant's budget window (0-1+), as last read from Redis",
            ["tenant", "window"],
            registry=r,
        )

    def settled_as(self, outcome: str) -> Counter:
        """The settlements counter of one outcome (children are cached: ``labels`` is not cheap)."""
        child = self._settled.get(outcome)
        if child is None:
            child = self._settled[outcome] = self.settled.labels(outcome)
        return child

    def spend_of(self, tenant: str) -> Counter:
        """The spend counter of one tenant, cached like `settled_as`."""
        child = self._spend.get(tenant)
        if child is None:
            child = self._spend[tenant] = self.spend.labels(tenant)
        return child
