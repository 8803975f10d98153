"""Prometheus metrics of the budget stage. Labels are bounded: reasons, outcomes, tenant names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from inferflux.router.labelled import Counter, Gauge

if TYPE_CHECKING:
    from inferflux.router.budgets.ledger import CostRecord

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
        self.settles = SettleCounts()
        r.register(self.settles)
        self.estimated = Counter(
            f"{PREFIX}_estimated_settlements_total",
            "Streams settled on an upper estimate because they ended before their usage arrived",
            registry=r,
        )
        self.used_ratio = Gauge(
            f"{PREFIX}_used_ratio",
            "Spent share of a tenant's budget window (0-1+), as last read from Redis",
            ["tenant", "window"],
            registry=r,
        )

    def count_settle(self, record: CostRecord) -> None:
        """Count one landed settle: its outcome, and the micro-units it charged its tenant."""
        outcomes = self.settles.outcomes
        outcomes[record.outcome] = outcomes.get(record.outcome, 0) + 1
        if record.charged:
            spend = self.settles.spend
            spend[record.tenant] = spend.get(record.tenant, 0) + record.charged


class SettleCounts(Collector):
    """Settlements by outcome, and money charged by tenant: counters kept as plain numbers.

    A settle lands in a callback for every budgeted request. A Prometheus counter's ``inc`` is
    four Python calls and a lock; a dictionary update is none, and the counters are made from these
    numbers when scraped. Only the event loop's thread counts, so no lock is needed.
    """

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = {}
        self.spend: dict[str, int] = {}  # micro-units

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield from self._families()

    def collect(self) -> Iterator[CounterMetricFamily]:
        settled, spend = self._families()
        for outcome, count in list(self.outcomes.items()):
            settled.add_metric([outcome], count)
        for tenant, micros in list(self.spend.items()):
            spend.add_metric([tenant], micros / 1_000_000)
        yield from (settled, spend)

    @staticmethod
    def _families() -> tuple[CounterMetricFamily, CounterMetricFamily]:
        return (
            CounterMetricFamily(
                f"{PREFIX}_settlements",
                "Settlements by outcome (settled, released, duplicate, queued, ...)",
                labels=["outcome"],
            ),
            CounterMetricFamily(
                f"{PREFIX}_spend", "Money charged, in the pricing file's currency", labels=["tenant"]
            ),
        )
