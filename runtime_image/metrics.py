"""Prometheus metrics of one runtime, all named ``inferflux_runtime_*``.

Labels carry only bounded values (endpoint, status, reason): never prompts, keys or client data.
The request duration carries OpenMetrics exemplars (trace ids) when tracing is on; ``/metrics``
serves OpenMetrics to scrapers that ask for it (`inferflux.router.telemetry.exemplars`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "inferflux_runtime"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_STEP_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 32, 64)
_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_TOKEN_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28)


class RuntimeMetrics:
    """The runtime's metrics in a registry of their own (one per app, so tests stay independent)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            f"{PREFIX}_requests",
            "HTTP requests by endpoint and status code",
            ["endpoint", "status"],
            registry=r,
        )
        self.request_duration = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Request latency",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(f"{PREFIX}_prompt_tokens", "Prompt tokens admitted", registry=r)
        self.generation_tokens = Counter(f"{PREFIX}_generation_tokens", "Tokens generated", registry=r)
        self.prefix_reused_tokens = Counter(
            f"{PREFIX}_prefix_cache_reused_tokens",
            "Prompt tokens served from a slot's cached prefix",
            registry=r,
        )
        self.ttft = Histogram(
            f"{PREFIX}_time_to_first_token_seconds",
            "Time from admission to first token",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inter_token = Histogram(
            f"{PREFIX}_inter_token_latency_seconds",
            "Time between tokens of a sequence",
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            f"{PREFIX}_queue_wait_seconds",
            "Time from submission to a sequence slot (the prefill starts)",
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        self.time_per_output_token = Histogram(
            f"{PREFIX}_time_per_output_token_seconds",
            "Completed sequences: first to last token, over the tokens after the first",
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.step_sequences = Histogram(
            f"{PREFIX}_decode_step_sequences",
            "Sequences in one llama_decode step: continuous batching steps every active sequence together",
            buckets=_STEP_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(f"{PREFIX}_queue_depth", "Requests waiting for a sequence slot", registry=r)
        self.running = Gauge(f"{PREFIX}_running_sequences", "Sequences generating or prefilling", registry=r)
        self.kv_usage = Gauge(
            f"{PREFIX}_kv_cache_usage_ratio", "Share of KV cells in use, cached prefixes included", registry=r
        )
        self.finished = Counter(
            f"{PREFIX}_sequences_finished", "Sequences ended, by reason", ["reason"], registry=r
        )
        self.preempted = Counter(
            f"{PREFIX}_sequences_preempted", "Running sequences paused for a higher-priority one", registry=r
        )
        self.resumed = Counter(
            f"{PREFIX}_sequences_resumed", "Paused sequences put back in a slot", registry=r
        )
        self.held = Counter(
            f"{PREFIX}_sequence_steps_held",
            "Steps a running sequence sat out while a higher-priority one was prefilling",
            registry=r,
        )
        self.steps_abandoned = Counter(
            f"{PREFIX}_steps_abandoned",
            "Decode steps stopped part-way for a higher-priority job, redone later",
            registry=r,
        )
        self.parked = Gauge(f"{PREFIX}_parked_sequences", "Sequences paused, waiting for a slot", registry=r)
        hit_rate = Gauge(
            f"{PREFIX}_prefix_cache_hit_ratio", "Reused prompt tokens over all prompt tokens", registry=r
        )
        hit_rate.set_function(self.prefix_hit_ratio)
        self.memory_headroom_bytes = Gauge(
            f"{PREFIX}_memory_headroom_bytes", "Memory left before the limit", registry=r
        )
        self.memory_headroom_ratio = Gauge(
            f"{PREFIX}_memory_headroom_ratio",
            "Memory left over the footprint of the served model (weights and KV cache)",
            registry=r,
        )
        self.memory_headroom_low = Gauge(
            f"{PREFIX}_memory_headroom_low",
            "1 while the headroom ratio is under the headroom factor: an in-place swap to a model "
            "of the same size would be refused",
            registry=r,
        )

    def prefix_hit_ratio(self) -> float:
        """Share of prompt tokens whose KV came from a cached prefix."""
        total = self.prompt_tokens._value.get()
        return float(self.prefix_reused_tokens._value.get() / total) if total else 0.0
