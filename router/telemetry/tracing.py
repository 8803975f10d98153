"""The process-wide tracer and the small API the router and the runtime call.

`install` builds the OpenTelemetry pipeline once per process (tracer provider → `Scrubber` →
`TailSampler` → batch exporter over OTLP/HTTP) and `uninstall` flushes and removes it. Until then,
and whenever tracing is off, `span`, `server_span` and `client_span` return `NOOP`, a shared
object whose every method does nothing, so callers never test whether tracing is on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import NonRecordingSpan, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from inferflux.router.telemetry.logs import request_id_var
from inferflux.router.telemetry.scrub import Scrubber
from inferflux.router.telemetry.settings import TraceSettings
from inferflux.router.telemetry.tail import TailSampler

PROPAGATOR = TraceContextTextMapPropagator()
#: The span every helper hands out while tracing is off: all its methods are no-ops.
NOOP: Span = NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)


@dataclass
class Tracing:
    """One installed tracing pipeline."""

    settings: TraceSettings
    provider: TracerProvider
    tracer: trace.Tracer
    sampler: TailSampler

    def flush(self, timeout_millis: int = 10_000) -> bool:
        """Export whatever kept spans are queued; True when done in time."""
        return self.provider.force_flush(timeout_millis)


_current: Tracing | None = None


def current_tracing() -> Tracing | None:
    """The installed pipeline, or None when tracing is off."""
    return _current


def install(settings: TraceSettings, exporter: SpanExporter | None = None) -> Tracing | None:
    """Start tracing as ``settings`` say (nothing when no endpoint is set and no exporter is given).

    ``exporter`` replaces the OTLP exporter (tests pass an in-memory one). Spans are exported in
    batches from a background thread, so the request path never waits on the trace backend.
    """
    global _current
    if exporter is None:
        if not settings.enabled:
            return None
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=settings.endpoint)
    uninstall()
    export: SpanProcessor = BatchSpanProcessor(exporter)
    sampler = TailSampler(export, settings.sample_ratio, settings.buffer_spans)
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.service_name}))
    provider.add_span_processor(Scrubber(sampler, capture=settings.capture_content))
    _current = Tracing(settings, provider, provider.get_tracer("inferflux"), sampler)
    return _current


def uninstall() -> None:
    """Flush and stop the installed pipeline, if any; tracing is off afterwards."""
    global _current
    if _current is not None:
        _current.provider.shutdown()
        _current = None


@contextlib.contextmanager
def current(span: Span) -> Iterator[Span]:
    """``span`` as the current span inside the block (it is not ended on exit)."""
    if not span.is_recording():
        yield span
        return
    with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
        yield span


def outgoing_headers() -> dict[str, str]:
    """Headers for a call made now: the request's ``x-request-id`` and the current ``traceparent``."""
    headers: dict[str, str] = {}
    rid = request_id_var.get()
    if rid:
        headers["x-request-id"] = rid
    if _current is not None:
        PROPAGATOR.inject(headers)
    return headers


def capture_content() -> bool:
    """True when prompt and completion text may be recorded on spans."""
    return _current is not None and _current.settings.capture_content


def extract(headers: Mapping[str, str]) -> Context | None:
    """The remote parent a ``traceparent`` header names, if any (None: start a new trace)."""
    if _current is None or "traceparent" not in headers:
        return None
    return PROPAGATOR.extract(headers)


def inject(headers: dict[str, str], span: Span) -> dict[str, str]:
    """``headers`` plus ``traceparent`` naming ``span`` (``headers`` itself when it does not record)."""
    if not span.is_recording():
        return headers
    carried = dict(headers)
    PROPAGATOR.inject(carried, trace.set_span_in_context(span))
    return carried


def start(
    name: str,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    parent: Context | None = None,
    start_time: int | None = None,
) -> Span:
    """A started span (`NOOP` when tracing is off); the caller ends it."""
    if _current is None:
        return NOOP
    return _current.tracer.start_span(
        name, context=parent, kind=kind, attributes=attributes, start_time=start_time
    )


@contextlib.contextmanager
def server_span(
    name: str, attributes: Mapping[str, Any] | None = None, parent: Context | None = None
) -> Iterator[Span]:
    """A server span, current inside the block; an escaping exception marks it failed."""
    with _current_span(name, SpanKind.SERVER, attributes, parent) as opened:
        yield opened


@contextlib.contextmanager
def span(name: str, **attributes: Any) -> Iterator[Span]:
    """An internal span (a stage of the request), current inside the block."""
    with _current_span(name, SpanKind.INTERNAL, attributes, None) as opened:
        yield opened


def client_span(name: str, attributes: Mapping[str, Any] | None = None) -> Span:
    """A started client span under the current span; pass it to `inject`, then end it."""
    return start(name, SpanKind.CLIENT, attributes)


@contextlib.contextmanager
def _current_span(
    name: str, kind: SpanKind, attributes: Mapping[str, Any] | None, parent: Context | None
) -> Iterator[Span]:
    if _current is None:
        yield NOOP
        return
    opened = _current.tracer.start_span(name, context=parent, kind=kind, attributes=attributes)
    try:
        with trace.use_span(opened, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            yield opened
    except BaseException as error:
        fail(opened, error_type(error))
        raise
    finally:
        opened.end()


def error_type(error: BaseException) -> str:
    """The ``error.type`` of an exception: its ``code`` value when it has one, else its class name."""
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    if isinstance(error, TimeoutError):
        return "timeout"
    code = getattr(error, "code", None)
    value = getattr(code, "value", code)
    return value if isinstance(value, str) and value else type(error).__name__


def fail(span: Span, kind: str) -> None:
    """Mark ``span`` failed with ``error.type`` ``kind`` (no message: it might quote the request)."""
    if span.is_recording():
        span.set_attribute("error.type", kind)
        span.set_status(Status(StatusCode.ERROR))
