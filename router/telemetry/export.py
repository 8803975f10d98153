"""Exporting kept traces: OTLP/HTTP with the JSON encoding, from a background thread.

The OpenTelemetry SDK's protobuf encoder costs about seven times more CPU per span than building
the OTLP/JSON document and serialising it with orjson (measured on this project's router: it cut
saturation throughput with tracing on to 0.78x of off; docs/observability.md), and it shares the
interpreter with the event loop. So kept spans are queued here as they are (`spans.Recorder`)
and a daemon thread encodes and POSTs them to ``<endpoint>`` (``content-type: application/json``,
the OTLP/HTTP JSON form every OTLP receiver accepts) every ``OTEL_BSP_SCHEDULE_DELAY`` ms (default
1000) or as soon as 512 spans wait. The queue is bounded (``OTEL_BSP_MAX_QUEUE_SIZE``, default
8192 spans): beyond it spans are dropped and counted. A failed POST is counted and logged, not
retried. `SdkSink` hands spans to any SDK ``SpanExporter`` instead (the tests' in-memory one).
"""

from __future__ import annotations

import http.client
import logging
import os
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import SpanKind

from inferflux.router.telemetry.spans import Recorder

log = logging.getLogger("inferflux.telemetry.export")
BATCH = 512
#: OTLP's span kinds (SPAN_KIND_INTERNAL = 1 ... SPAN_KIND_CONSUMER = 5).
KINDS = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}


class Sink(Protocol):
    """Where kept spans go."""

    def submit(self, spans: Sequence[Recorder]) -> None:
        """Queue ended spans of a kept trace (never blocks on the network)."""

    def flush(self, timeout: float = 10.0) -> bool:
        """Send everything queued; True when done within ``timeout`` seconds."""

    def close(self) -> None:
        """Flush, then stop."""


def any_value(value: Any) -> dict[str, Any]:
    """An attribute value as an OTLP/JSON ``AnyValue`` (64-bit integers as decimal strings)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [any_value(each) for each in value]}}
    return {"stringValue": str(value)}


def key_values(attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Attributes as OTLP/JSON ``KeyValue`` objects."""
    return [{"key": key, "value": any_value(value)} for key, value in attributes.items()]


def encode_span(span: Recorder) -> dict[str, Any]:
    """One span as an OTLP/JSON ``Span`` (ids as lowercase hex, times as decimal strings)."""
    encoded: dict[str, Any] = {
        "traceId": format(span.trace.trace_id, "032x"),
        "spanId": format(span.span_id, "016x"),
        "name": span.name,
        "kind": KINDS[span.kind],
        "startTimeUnixNano": str(span.start_time),
        "endTimeUnixNano": str(span.end_time),
        "attributes": key_values(span.attributes),
        "status": {"code": 2} if span.error else {},
    }
    if span.parent_id:
        encoded["parentSpanId"] = format(span.parent_id, "016x")
    if span.events:
        encoded["events"] = [
            {"timeUnixNano": str(timestamp), "name": name, "attributes": key_values(attributes)}
            for name, attributes, timestamp in span.events
        ]
    return encoded


def encode(spans: Iterable[Recorder], resource: Resource) -> bytes:
    """An OTLP/JSON ``ExportTraceServiceRequest`` body holding ``spans``."""
    return orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": key_values(dict(resource.attributes))},
                    "scopeSpans": [
                        {"scope": {"name": "inferflux"}, "spans": [encode_span(s) for s in spans]}
                    ],
                }
            ]
        }
    )


class OtlpJsonSink:
    """Batches kept spans and POSTs them as OTLP/JSON from a daemon thread."""

    def __init__(self, endpoint: str, resource: Resource, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.endpoint = urlsplit(endpoint)
        self.resource = resource
        self.delay = float(env.get("OTEL_BSP_SCHEDULE_DELAY") or 1000) / 1000
        self.max_queue = int(env.get("OTEL_BSP_MAX_QUEUE_SIZE") or 8192)
        self.timeout = float(env.get("OTEL_EXPORTER_OTLP_TIMEOUT") or 10_000) / 1000
        self.dropped = 0  # spans that did not fit the queue
        self.failed = 0  # spans whose POST failed
        self.sent = 0
        self._queue: deque[Recorder] = deque()
        self._wake = threading.Condition()
        self._idle = threading.Event()
        self._idle.set()
        self._stopping = False
        self._connection: http.client.HTTPConnection | None = None
        self._thread = threading.Thread(target=self._run, name="inferflux-otlp-export", daemon=True)
        self._thread.start()

    def submit(self, spans: Sequence[Recorder]) -> None:
        room = self.max_queue - len(self._queue)
        if room < len(spans):
            self.dropped += len(spans) - max(room, 0)
            spans = spans[: max(room, 0)]
        self._queue.extend(spans)
        if len(self._queue) >= BATCH:
            with self._wake:
                self._wake.notify()

    def flush(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._wake:
            self._idle.clear()
            self._wake.notify()
        while self._queue or not self._idle.is_set():
            if time.monotonic() > deadline:
                return False
            self._idle.wait(0.05)
        return True

    def close(self) -> None:
        self.flush()
        self._stopping = True
        with self._wake:
            self._wake.notify()
        self._thread.join(self.timeout + 1)

    def _run(self) -> None:
        while not self._stopping:
            with self._wake:
                if len(self._queue) < BATCH and self._idle.is_set():
                    self._wake.wait(self.delay)
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
                self._post(batch)
            self._idle.set()

    def _post(self, batch: list[Recorder]) -> None:
        body = encode(batch, self.resource)
        try:
            connection = self._connection or self._connect()
            connection.request(
                "POST", self.endpoint.path or "/v1/traces", body, {"content-type": "application/json"}
            )
            response = connection.getresponse()
            response.read()
            ok = 200 <= response.status < 300
        except (OSError, http.client.HTTPException):
            self._connection = None
            ok = False
        if ok:
            self.sent += len(batch)
            return
        self.failed += len(batch)
        log.warning(
            "could not export %d spans to %s (%d so far)", len(batch), self.endpoint.netloc, self.failed
        )

    def _connect(self) -> http.client.HTTPConnection:
        host, port = self.endpoint.hostname or "127.0.0.1", self.endpoint.port
        if self.endpoint.scheme == "https":
            context = ssl.create_default_context()
            self._connection = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=context)
        else:
            self._connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
        return self._connection


class SdkSink:
    """Hands kept spans, as SDK ``ReadableSpan`` objects, to an SDK ``SpanExporter`` (synchronously)."""

    def __init__(self, exporter: SpanExporter, resource: Resource) -> None:
        self.exporter = exporter
        self.resource = resource

    def submit(self, spans: Sequence[Recorder]) -> None:
        self.exporter.export([span.readable(self.resource) for span in spans])

    def flush(self, timeout: float = 10.0) -> bool:
        return True

    def close(self) -> None:
        self.exporter.shutdown()
