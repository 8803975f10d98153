"""Trace settings, read from the environment: the standard ``OTEL_*`` names and ``INFERFLUX_OTEL_*``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

TRUE = frozenset({"1", "true", "yes", "on"})


class TraceSettingsError(ValueError):
    """A trace setting is malformed; the message names the variable."""


@dataclass(frozen=True)
class TraceSettings:
    """What to trace and where to send it.

    ``endpoint`` is the OTLP/HTTP base URL (``OTEL_EXPORTER_OTLP_ENDPOINT``; spans go to
    ``<endpoint>/v1/traces``) or the full traces URL (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``).
    Empty means tracing is off.
    """

    endpoint: str = ""
    service_name: str = "inferflux"
    sample_ratio: float = 0.1  # share of successful traces exported; failed ones always are
    buffer_spans: int = 20_000  # spans held in process while their traces are undecided
    capture_content: bool = False  # keep prompt and completion text on spans (off: scrubbed)

    @property
    def enabled(self) -> bool:
        """Tracing is on exactly when an endpoint is set."""
        return bool(self.endpoint)

    @classmethod
    def from_env(cls, service_name: str, environ: Mapping[str, str] | None = None) -> TraceSettings:
        """Settings from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        endpoint = traces or (base.rstrip("/") + "/v1/traces" if base else "")
        ratio = _number(env, "INFERFLUX_OTEL_SAMPLE_RATIO", 0.1)
        if not 0.0 <= ratio <= 1.0:
            raise TraceSettingsError("INFERFLUX_OTEL_SAMPLE_RATIO must be between 0 and 1")
        buffer = _number(env, "INFERFLUX_OTEL_BUFFER_SPANS", 20_000)
        if buffer < 1 or buffer != int(buffer):
            raise TraceSettingsError("INFERFLUX_OTEL_BUFFER_SPANS must be a positive whole number")
        capture = env.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "").strip().lower()
        return cls(
            endpoint=endpoint,
            service_name=env.get("OTEL_SERVICE_NAME", "").strip() or service_name,
            sample_ratio=ratio,
            buffer_spans=int(buffer),
            capture_content=capture in TRUE,
        )


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise TraceSettingsError(f"{name} must be a number, not {raw!r}") from None


@dataclass(frozen=True)
class MetricsBridgeSettings:
    """The OTel metrics bridge (`bridge.GenAiMetrics`): off unless ``INFERFLUX_OTEL_METRICS`` is true.

    ``endpoint`` is the full OTLP/HTTP metrics URL: ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``, else
    ``<OTEL_EXPORTER_OTLP_ENDPOINT>/v1/metrics``. ``interval_ms`` is ``OTEL_METRIC_EXPORT_INTERVAL``.
    """

    enabled: bool = False
    endpoint: str = ""
    interval_ms: int = 60_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MetricsBridgeSettings:
        """Settings from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        enabled = env.get("INFERFLUX_OTEL_METRICS", "").strip().lower() in TRUE
        metrics = env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "").strip()
        base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        endpoint = metrics or (base.rstrip("/") + "/v1/metrics" if base else "")
        if enabled and not endpoint:
            raise TraceSettingsError(
                "INFERFLUX_OTEL_METRICS needs OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
                " or OTEL_EXPORTER_OTLP_ENDPOINT"
            )
        interval = _number(env, "OTEL_METRIC_EXPORT_INTERVAL", 60_000)
        if interval < 100 or interval != int(interval):
            raise TraceSettingsError("OTEL_METRIC_EXPORT_INTERVAL must be whole milliseconds, at least 100")
        return cls(enabled=enabled, endpoint=endpoint, interval_ms=int(interval))
