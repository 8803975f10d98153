"""Prometheus metrics of the budget stage. Labels are bounded: reasons, outcomes, tenant names."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

PREFIX = "inferflux_router_budget"


class BudgetMetrics:
    """Counters of admissions and settlements, and the spend gauges alerts read."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
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
