"""The process-wide tracing pipeline and the small API the router and the runtime call.

`install` builds it once per process: recording spans (`spans.Recorder`) → `TailSampler`, which
scrubs the kept ones → OTLP/HTTP export from a background thread (`export.OtlpJsonSink`).
`uninstall` flushes and removes it. Until then, and whenever tracing is off, `span`,
`server_span`, `client_span` and `start` return `NOOP`, a shared span whose every method does
nothing, so callers never test whether tracing is on.

Context: the current span is a context variable (`spans.current_span`), so a span started inside
a request is that request's child in any task it spawns; ``traceparent`` headers are read and
written here (W3C trace context, ``tracestate`` is not carried).
"""

from __future__ import annotations

import contextvars
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import SpanKind

from inferflux.router.telemetry.export import OtlpJsonSink, SdkSink, Sink
from inferflux.router.telemetry.logs import request_id_var
from inferflux.router.telemetry.settings import TraceSettings
from inferflux.router.telemetry.spans import (
    ERROR,
    NOOP,
    NoopSpan,
    Recorder,
    RemoteParent,
    TraceRecord,
    TraceSpan,
    current_span,
    error_type,
    parse_traceparent,
    traceparent,
)
from inferflux.router.telemetry.tail import TailSampler

__all__ = ["NOOP", "RemoteParent", "Tracing", "error_type"]


@dataclass
class Tracing:
    """One installed tracing pipeline."""

    settings: TraceSettings
    sampler: TailSampler
    sink: Sink

    def __post_init__(self) -> None:
        self.on_end = self.sampler.ended  # bound once: every span is handed it

    def flush(self, timeout: float = 10.0) -> bool:
        """Export whatever kept spans are queued; True when done in time."""
        return self.sink.flush(timeout)


_current: Tracing | None = None


def current_tracing() -> Tracing | None:
    """The installed pipeline, or None when tracing is off."""
    return _current


def install(settings: TraceSettings, exporter: SpanExporter | None = None) -> Tracing | None:
    """Start tracing as ``settings`` say (nothing when no endpoint is set and no exporter is given).

    ``exporter``, an SDK span exporter, replaces the OTLP/JSON export (tests pass an in-memory one).
    """
    global _current
    if exporter is None and not settings.enabled:
        return None
    uninstall()
    resource = Resource.create({SERVICE_NAME: settings.service_name})
    sink: Sink = (
        SdkSink(exporter, resource) if exporter is not None else OtlpJsonSink(settings.endpoint, resource)
    )
    sampler = TailSampler(sink, settings.sample_ratio, settings.buffer_spans, settings.capture_content)
    _current = Tracing(settings, sampler, sink)
    return _current


def uninstall() -> None:
    """Flush and stop the installed pipeline, if any; tracing is off afterwards."""
    global _current
    if _current is not None:
        _current.sink.close()
        _current = None


def capture_content() -> bool:
    """True when prompt and completion text may be recorded on spans."""
    return _current is not None and _current.settings.capture_content


def start(
    name: str,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Mapping[str, Any] | None = None,
    parent: TraceSpan | RemoteParent | None = None,
    start_time: int | None = None,
) -> Recorder | NoopSpan:
    """A started span (`NOOP` when tracing is off) under ``parent``, else the current span; end it.

    With no parent and no current span, the span starts a new trace.
    """
    tracing = _current
    if tracing is None:
        return NOOP
    if parent is None:
        parent = current_span.get()
    if type(parent) is Recorder:  # the common case, tested first and exactly (no subclasses)
        record = parent.trace
        leaf = record.open_leaf
        if leaf is not None and leaf.parent is parent:  # started inside a leaf span: goes under it
            parent = leaf.promoted
            if parent is None:
                parent = leaf.promote()
                tracing.sampler.started(parent)
        span = Recorder(name, kind, record, parent.span_id, False, attributes, start_time, tracing.on_end)
        tracing.sampler.started(span)
        return span
    if isinstance(parent, RemoteParent):
        record, parent_id, remote = TraceRecord(parent.trace_id), parent.span_id, True
    else:
        record, parent_id, remote = TraceRecord(random.getrandbits(128) or 1), 0, False
    return Recorder(name, kind, record, parent_id, remote, attributes, start_time, tracing.on_end)


def extract(headers: Mapping[str, str]) -> RemoteParent | None:
    """The caller's span a ``traceparent`` header names, if any (None: start a new trace)."""
    value = headers.get("traceparent")
    if _current is None or value is None:
        return None
    return parse_traceparent(value)


def inject(headers: dict[str, str], span: TraceSpan) -> dict[str, str]:
    """``headers`` plus ``traceparent`` naming ``span`` (``headers`` itself when it does not record)."""
    if not isinstance(span, Recorder):
        return headers
    return {**headers, "traceparent": traceparent(span)}


def outgoing_headers() -> dict[str, str]:
    """Headers for a call made now: the request's ``x-request-id`` and the current ``traceparent``."""
    headers: dict[str, str] = {}
    rid = request_id_var.get()
    if rid:
        headers["x-request-id"] = rid
    span = current_span.get()
    if span is not None:
        headers["traceparent"] = traceparent(span)
    return headers


class current:
    """``span`` as the current span inside the block (it is not ended on exit)."""

    __slots__ = ("span", "token")

    def __init__(self, span: TraceSpan) -> None:
        self.span = span
        self.token: contextvars.Token[Recorder | None] | None = None

    def __enter__(self) -> TraceSpan:
        if isinstance(self.span, Recorder):
            self.token = current_span.set(self.span)
        return self.span

    def __exit__(self, *exc: object) -> None:
        if self.token is not None:
            current_span.reset(self.token)


def server_span(
    name: str, attributes: Mapping[str, Any] | None = None, parent: RemoteParent | None = None
) -> Recorder | NoopSpan:
    """A server span, current inside the ``with`` block; an escaping exception marks it failed."""
    return start(name, SpanKind.SERVER, attributes, parent)


def span(name: str, **attributes: Any) -> Recorder | NoopSpan:
    """An internal span (a stage of the request), current inside the ``with`` block."""
    return start(name, SpanKind.INTERNAL, attributes)


def client_span(name: str, attributes: Mapping[str, Any] | None = None) -> TraceSpan:
    """A started client span under the current span; pass it to `inject`, then end it."""
    return start(name, SpanKind.CLIENT, attributes)


def fail(span: TraceSpan, kind: str) -> None:
    """Mark ``span`` failed with ``error.type`` ``kind`` (no message: it might quote the request)."""
    if span.is_recording():
        span.set_attribute("error.type", kind)
        span.set_status(ERROR)
