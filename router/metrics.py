"""Prometheus metrics, all prefixed ``inferflux_router_``. Labels carry model names, never content.

Tenant names are labels too (`tenant_tokens`), bounded by `BoundedLabel`: past its limit, new tenants
are counted under ``other`` so a flood of tenants cannot grow the series without end. Latency
histograms carry OpenMetrics exemplars (a trace id) when tracing is on (`telemetry.exemplars`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.registry import Collector

from inferflux.router.labelled import Counter, Gauge, Histogram

PREFIX = "inferflux_router_"
_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TOKEN = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28)
_WAIT = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
OTHER = "other"  # the label value of every tenant past `BoundedLabel`'s limit
NO_TENANT = "-"  # authentication off: no tenant
_GAP = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    """Every router metric, registered in its own registry so tests and apps don't collide."""

    def __init__(self, registry: CollectorRegistry | None = None, max_tenants: int = 100) -> None:
        self.registry = registry or CollectorRegistry()
        self.tenant_label = BoundedLabel(max_tenants)
        r = self.registry
        self.requests = Counter(
            PREFIX + "requests",
            "Requests answered, by route, model and status.",
            ["route", "model", "status"],
            registry=r,
        )
        self.duration = Histogram(
            PREFIX + "request_duration_seconds",
            "Time from request to last byte.",
            ["route", "model"],
            buckets=_LATENCY,
            registry=r,
        )
        self.ttft = Histogram(
            PREFIX + "ttft_seconds",
            "Time to the first upstream byte of a stream.",
            ["model"],
            buckets=_LATENCY,
            registry=r,
        )
        self.chunk_gap = Histogram(
            PREFIX + "inter_chunk_seconds",
            "Gap between relayed stream chunks.",
            ["model"],
            buckets=_GAP,
            registry=r,
        )
        self.tokens = Counter(
            PREFIX + "tokens", "Tokens reported by upstream usage, by kind.", ["model", "kind"], registry=r
        )
        self.stream_chunks = Counter(
            PREFIX + "stream_chunks", "SSE data events relayed.", ["model"], registry=r
        )
        self.slots = SlotGauges()  # in_flight and queue_depth, read from the dispatcher when scraped
        r.register(self.slots)
        self.held = Gauge(
            PREFIX + "held_requests",
            "Requests held until a model with no ready replica gets one (a model loading), per model.",
            ["model"],
            registry=r,
        )
        self.upstream_errors = Counter(
            PREFIX + "upstream_errors", "Upstream failures by normalised code.", ["model", "code"], registry=r
        )
        self.retries = Counter(
            PREFIX + "retries", "Requests retried on another replica.", ["model"], registry=r
        )
        self.balancer_decisions = Counter(
            PREFIX + "balancer_decisions",
            "Replica choices: policy, and whether the first preference was taken or the request spilled.",
            ["model", "policy", "choice"],
            registry=r,
        )
        self.balancer_outcomes = Counter(
            PREFIX + "balancer_outcomes",
            "Outcome of requests per chosen endpoint.",
            ["model", "endpoint", "outcome"],
            registry=r,
        )
        self.failovers = Counter(
            PREFIX + "failovers",
            "Streams whose replica broke mid-body, by what the router did: continued on another "
            "replica, closed (the answer was complete), no_replica, not_continuable, refused.",
            ["model", "outcome"],
            registry=r,
        )
        self.resumes = Counter(
            PREFIX + "resumes", "Stream resume attempts by outcome.", ["outcome"], registry=r
        )
        self.table_generation = Gauge(
            PREFIX + "routing_table_generation", "Routing tables applied.", registry=r
        )
        self.tpot = Histogram(
            PREFIX + "time_per_output_token_seconds",
            "Streamed answers: first to last chunk, over the completion tokens after the first.",
            ["model"],
            buckets=_TOKEN,
            registry=r,
        )
        self.queue_wait = Histogram(
            PREFIX + "queue_wait_seconds",
            "Time a request waited for a slot of its model (the per-model concurrency limit).",
            ["model"],
            buckets=_WAIT,
            registry=r,
        )
        self.tenant_tokens = Counter(
            PREFIX + "tenant_tokens",
            "Tokens reported by upstream usage, by tenant (past the limit: 'other') and kind.",
            ["tenant", "kind"],
            registry=r,
        )


class BoundedLabel:
    """Label values for an open set (tenant names): the first ``limit`` seen keep their name, the rest
    become ``other``. Remembered for the process's life, like the series they name."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()  # a metrics scrape thread may not race, but tests call from threads

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(value)
            return value


#: A source of slot counts: (model, requests holding a slot, requests waiting for one) per model.
SlotCounts = Callable[[], Iterable[tuple[str, int, int]]]


class SlotGauges(Collector):
    """``in_flight`` and ``queue_depth`` per model, read from the admissions when scraped.

    Kept up to date per request they were six label lookups and five gauge updates on every
    request (docs/router.md, session 16); read at scrape time they cost nothing in between and are
    exact when read. ``sources`` are the dispatchers' counts (one per router).
    """

    def __init__(self) -> None:
        self.sources: list[SlotCounts] = []

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families({})

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts: dict[str, tuple[int, int]] = {}
        for source in self.sources:
            for model, active, queued in source():
                had_active, had_queued = counts.get(model, (0, 0))
                counts[model] = (had_active + active, had_queued + queued)
        yield from self._families(counts)

    @staticmethod
    def _families(counts: dict[str, tuple[int, int]]) -> Iterator[GaugeMetricFamily]:
        in_flight = GaugeMetricFamily(
            PREFIX + "in_flight", "Requests holding a slot, per model.", labels=["model"]
        )
        queued = GaugeMetricFamily(
            PREFIX + "queue_depth", "Requests waiting for a slot, per model.", labels=["model"]
        )
        for model, (active, waiting) in sorted(counts.items()):
            in_flight.add_metric([model], active)
            queued.add_metric([model], waiting)
        yield in_flight
        yield queued
