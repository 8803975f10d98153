"""OpenMetrics exemplars: a latency observation names the trace that explains it.

A histogram bucket's exemplar is the trace id of one request that fell in it, so a p99 spike on a
dashboard links to a trace of a slow request. Only traces that are (or will be) exported are worth
naming: with tail sampling a successful trace is kept when its id falls in the sampled ratio, a
known fact at any time, and a failed one always; `exemplar` names the current trace only then.

Prometheus reads exemplars only from the OpenMetrics format, which a scraper asks for in its
``Accept`` header (Prometheus does with ``--enable-feature=exemplar-storage``); `exposition` serves
that format to those who ask and the classic text format to everyone else.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from inferflux.router.telemetry import tracing
from inferflux.router.telemetry.spans import current_span
from inferflux.router.telemetry.tail import TRACE_ID_LIMIT


def exemplar(failed: bool = False) -> dict[str, str] | None:
    """``{"trace_id": ...}`` of the current request when its trace will be exported, else None.

    ``failed``: the caller knows the request failed (its trace is kept whatever the ratio), though
    the server span may not say so yet. None while tracing is off or outside a traced request.
    """
    installed = tracing.current_tracing()
    if installed is None:
        return None
    span = current_span.get()
    if span is None:
        return None
    trace = span.trace
    if failed or trace.failed or (trace.trace_id & TRACE_ID_LIMIT) < installed.sampler.threshold:
        return {"trace_id": f"{trace.trace_id:032x}"}
    return None


def exposition(registry: CollectorRegistry, accept: str) -> tuple[bytes, str]:
    """The registry's metrics and their content type, in the format ``accept`` asks for.

    OpenMetrics (with exemplars) when ``accept`` names ``application/openmetrics-text``, else the
    Prometheus text format, which has no exemplars.
    """
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


def accept_header(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The ``Accept`` header among an ASGI scope's headers; empty when absent."""
    for name, value in headers:
        if name == b"accept":
            return value.decode("latin-1")
    return ""
