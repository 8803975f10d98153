"""The OTel metrics bridge: GenAI semantic-convention metrics over OTLP, for those who want them.

Prometheus scrapes ``inferflux_*`` metrics (router/metrics.py, runtime_image/metrics.py); a site
whose metrics pipeline is OTLP can also turn this bridge on (`MetricsBridgeSettings`, off by
default) and receive the GenAI metrics under their semantic-convention names and units (semconv
v1.41, development status):

=========================================== ============ ==========================================
``gen_ai.client.token.usage``               ``{token}``  per request, ``gen_ai.token.type``
                                                         ``input`` / ``output``
``gen_ai.client.operation.duration``        ``s``        the router's call, request to last byte
``gen_ai.server.request.duration``          ``s``        the same span seen as the server's
``gen_ai.server.time_to_first_token``       ``s``        streams: to the first chunk
``gen_ai.server.time_per_output_token``     ``s``        streams: per token after the first
=========================================== ============ ==========================================

Attributes: ``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model``,
``error.type`` on failures; nothing that grows with traffic (no request ids, no tenants). The
SDK's instruments take a lock per record, which is why this is a bridge fed once per request, off
the per-chunk path, and not the Prometheus metrics themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource

from inferflux.router.telemetry.settings import MetricsBridgeSettings

# The semantic conventions' advised bucket boundaries.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
TOKEN_BUCKETS = tuple(float(4**power) for power in range(14))  # 1, 4, 16, ... 67108864


@dataclass(frozen=True)
class Operation:
    """One finished GenAI request, as the bridge records it."""

    operation: str  # gen_ai.operation.name: chat, text_completion, embeddings
    provider: str  # gen_ai.provider.name
    model: str  # gen_ai.request.model
    duration: float  # seconds, request to last byte
    error_type: str = ""  # error.type; empty: it succeeded
    input_tokens: int | None = None
    output_tokens: int | None = None
    time_to_first_token: float | None = None  # streams only
    time_per_output_token: float | None = None  # streams of more than one token only


class GenAiMetrics:
    """The GenAI instruments on an SDK meter provider whose reader exports them."""

    def __init__(self, reader: MetricReader, service_name: str) -> None:
        self.provider = MeterProvider(
            metric_readers=[reader], resource=Resource.create({SERVICE_NAME: service_name})
        )
        meter = self.provider.get_meter("inferflux")
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            "{token}",
            "Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.operation_duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            "s",
            "GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.request_duration = meter.create_histogram(
            "gen_ai.server.request.duration",
            "s",
            "Generative AI server request duration such as time-to-last byte or last output token.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.time_to_first_token = meter.create_histogram(
            "gen_ai.server.time_to_first_token",
            "s",
            "Time to generate first token for successful responses.",
            explicit_bucket_boundaries_advisory=TTFT_BUCKETS,
        )
        self.time_per_output_token = meter.create_histogram(
            "gen_ai.server.time_per_output_token",
            "s",
            "Time per output token generated after the first token for successful responses.",
            explicit_bucket_boundaries_advisory=TPOT_BUCKETS,
        )

    def record(self, done: Operation) -> None:
        """Record one finished request on every instrument that applies."""
        attributes: dict[str, str] = {
            "gen_ai.operation.name": done.operation,
            "gen_ai.provider.name": done.provider,
            "gen_ai.request.model": done.model,
        }
        if done.error_type:
            attributes["error.type"] = done.error_type
        self.operation_duration.record(done.duration, attributes)
        self.request_duration.record(done.duration, attributes)
        if done.input_tokens is not None:
            self.token_usage.record(done.input_tokens, _with(attributes, "gen_ai.token.type", "input"))
        if done.output_tokens is not None:
            self.token_usage.record(done.output_tokens, _with(attributes, "gen_ai.token.type", "output"))
        if done.error_type:
            return  # the per-token timings are for successful responses only
        if done.time_to_first_token is not None:
            self.time_to_first_token.record(done.time_to_first_token, attributes)
        if done.time_per_output_token is not None:
            self.time_per_output_token.record(done.time_per_output_token, attributes)

    def flush(self, timeout_ms: float = 10_000) -> bool:
        """Export what was recorded now; True when done in time."""
        return self.provider.force_flush(timeout_ms)

    def shutdown(self) -> None:
        """Export what is left and stop the export thread."""
        self.provider.shutdown()


def _with(attributes: Mapping[str, str], key: str, value: str) -> dict[str, str]:
    return {**attributes, key: value}


def start(
    settings: MetricsBridgeSettings, service_name: str, exporter: MetricExporter | None = None
) -> GenAiMetrics | None:
    """The bridge, exporting every ``interval_ms`` over OTLP/HTTP (protobuf); None when it is off.

    ``exporter`` replaces the OTLP exporter (the endpoint is then not used).
    """
    if not settings.enabled:
        return None
    if exporter is None:
        # Imported here: the OTLP exporter pulls in requests and protobuf, needed only when on.
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(endpoint=settings.endpoint)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=settings.interval_ms)
    return GenAiMetrics(reader, service_name)
