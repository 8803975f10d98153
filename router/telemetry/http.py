"""HTTP facts for server spans, read from an ASGI scope (no router imports: the runtime shares it).

Attribute names follow the HTTP semantic conventions; the request id is ``inferflux.request_id``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.trace import SpanKind

from inferflux.router.telemetry.spans import NoopSpan, Recorder, TraceSpan, parse_traceparent
from inferflux.router.telemetry.tracing import fail, start

REQUEST_ID = "inferflux.request_id"
CANCELLED = "cancelled"


def trace_headers(scope: Mapping[str, Any]) -> dict[str, str]:
    """The W3C trace-context headers of a request (``traceparent``, ``tracestate``), if any."""
    headers = dict(scope.get("headers", ()))  # one pass in C: this runs for every request
    parent = headers.get(b"traceparent")
    if parent is None:
        return {}
    found = {"traceparent": parent.decode("latin-1")}
    state = headers.get(b"tracestate")
    if state is not None:
        found["tracestate"] = state.decode("latin-1")
    return found


def request_span(scope: Mapping[str, Any], request_id: str) -> Recorder | NoopSpan:
    """The server span of an ASGI HTTP request (``METHOD /path``), continuing the caller's trace.

    Its attributes are the method, the path and the request id; one step, as every request pays
    for it.
    """
    value = dict(scope["headers"]).get(b"traceparent")
    parent = parse_traceparent(value.decode("latin-1")) if value is not None else None
    method, path = scope["method"], scope["path"]
    attributes = {"http.request.method": method, "url.path": path, REQUEST_ID: request_id}
    return start(f"{method} {path}", SpanKind.SERVER, attributes, parent)


def record_status(span: TraceSpan, status: int) -> None:
    """The response status on ``span``; a 4xx/5xx, or no answer at all (0), marks it failed."""
    if status:
        span.set_attribute("http.response.status_code", status)
    if status >= 400:
        fail(span, str(status))
    elif status == 0:
        fail(span, CANCELLED)


def record_response(span: TraceSpan, status: int) -> None:
    """An upstream's answer status on a client span; 4xx/5xx mark it failed."""
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        fail(span, str(status))


@functools.lru_cache(maxsize=1024)
def server_address(url: str) -> dict[str, Any]:
    """``server.address`` and ``server.port`` of an upstream URL (cached: a few URLs, many requests)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {"server.address": parts.hostname or "", "server.port": port}
