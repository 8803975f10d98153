"""Traces and structured logs for the router and the runtime (OpenTelemetry, GenAI conventions).

Tracing is off unless an OTLP endpoint is configured (`TraceSettings`). When off, `span`,
`server_span` and `client_span` return one shared no-op object: the hot path pays an attribute
lookup. When on, every span of a trace is kept in process until the trace's local root ends, then
the whole trace is exported if it failed or if its trace id falls in the sampled ratio
(`tail.TailSampler`), after content-carrying attributes were dropped (`scrub.Scrubber`).

This subpackage imports nothing else from the router, so the runtime (`inferflux.runtime.telemetry`)
uses the same pieces.
"""

from inferflux.router.telemetry.http import record_response, record_status, server_address
from inferflux.router.telemetry.logs import JsonFormatter, configure_logging, request_id_var
from inferflux.router.telemetry.settings import TraceSettings
from inferflux.router.telemetry.tracing import (
    Tracing,
    capture_content,
    client_span,
    current,
    current_tracing,
    error_type,
    extract,
    fail,
    inject,
    install,
    outgoing_headers,
    server_span,
    span,
    uninstall,
)

__all__ = [
    "JsonFormatter",
    "TraceSettings",
    "Tracing",
    "capture_content",
    "client_span",
    "configure_logging",
    "current",
    "current_tracing",
    "error_type",
    "extract",
    "fail",
    "inject",
    "install",
    "outgoing_headers",
    "record_response",
    "record_status",
    "request_id_var",
    "server_address",
    "server_span",
    "span",
    "uninstall",
]
