"""Structured logs: one JSON object per line, with the request id and the current trace and span.

The request id lives in a context variable (`request_id_var`) that the router and the runtime set
for each request, so every line logged while serving it, from any module, names it. Lines carry
the logger's message as formatted by the code that logged it; InferFlux never logs prompt or
completion text, and this formatter adds none (no request bodies, no headers).
"""

from __future__ import annotations

import contextvars
import logging
import time
import traceback
from typing import Any

import orjson

from inferflux.router.telemetry.spans import current_span

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("inferflux_request_id", default="")


class JsonFormatter(logging.Formatter):
    """Formats a record as ``{"time", "level", "logger", "message", "request_id", "trace_id", "span_id"}``.

    ``exception`` holds the exception's type and ``stack`` its frames, never its message (which
    might quote input).
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid:
            line["request_id"] = rid
        span = current_span.get()
        if span is not None:
            line["trace_id"] = format(span.trace.trace_id, "032x")
            line["span_id"] = format(span.span_id, "016x")
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__
            line["stack"] = "".join(traceback.format_tb(record.exc_info[2]))
        return orjson.dumps(line).decode()


def configure_logging(level: str | int = logging.INFO, style: str = "json") -> None:
    """Root logging to stderr, JSON lines (``style="json"``) or the classic text format (``"text"``)."""
    handler = logging.StreamHandler()
    if style == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
