"""HTTP facts for server spans, read from an ASGI scope (no router imports: the runtime shares it).

Attribute names follow the HTTP semantic conventions; the request id is ``inferflux.request_id``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from inferflux.router.telemetry.spans import TraceSpan
from inferflux.router.telemetry.tracing import fail

REQUEST_ID = "inferflux.request_id"
CANCELLED = "cancelled"


def trace_headers(scope: Mapping[str, Any]) -> dict[str, str]:
    """The W3C trace-context headers of a request (``traceparent``, ``tracestate``), if any."""
    found: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        if name in (b"traceparent", b"tracestate"):
            found[name.decode()] = value.decode("latin-1")
    return found


def server_attributes(scope: Mapping[str, Any], request_id: str) -> dict[str, Any]:
    """Method, route and request id of an ASGI HTTP request."""
    return {
        "http.request.method": scope.get("method", ""),
        "url.path": scope.get("path", ""),
        REQUEST_ID: request_id,
    }


def record_status(span: TraceSpan, status: int) -> None:
    """The response status on ``span``; a 4xx/5xx, or no answer at all (0), marks it failed."""
    if not span.is_recording():
        return
    if status:
        span.set_attribute("http.response.status_code", status)
    if status >= 400:
        fail(span, str(status))
    elif status == 0:
        fail(span, CANCELLED)


def record_response(span: TraceSpan, status: int) -> None:
    """An upstream's answer status on a client span; 4xx/5xx mark it failed."""
    if not span.is_recording():
        return
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        fail(span, str(status))


@functools.lru_cache(maxsize=1024)
def server_address(url: str) -> dict[str, Any]:
    """``server.address`` and ``server.port`` of an upstream URL (cached: a few URLs, many requests)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return {"server.address": parts.hostname or "", "server.port": port}
