"""Prometheus metrics, all prefixed ``inferflux_router_``. Labels carry model names, never content."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "inferflux_router_"
_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_GAP = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Metrics:
    """Every router metric, registered in its own registry so tests and apps don't collide."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
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
        self.in_flight = Gauge(
            PREFIX + "in_flight", "Requests holding a slot, per model.", ["model"], registry=r
        )
        self.queue_depth = Gauge(
            PREFIX + "queue_depth", "Requests waiting for a slot, per model.", ["model"], registry=r
        )
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
