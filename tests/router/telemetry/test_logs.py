"""JSON log lines: request id, trace and span ids, and never an exception's message."""

from __future__ import annotations

import logging
import sys

import orjson

from inferflux.router import telemetry
from inferflux.router.telemetry import JsonFormatter, request_id_var


def _record(message: str, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("inferflux.test", logging.WARNING, __file__, 1, message, None, exc_info)  # type: ignore[arg-type]


def test_a_line_is_one_json_object_with_the_request_id() -> None:
    token = request_id_var.set("rid-log-1")
    try:
        line = orjson.loads(JsonFormatter().format(_record("upstream slow")))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "upstream slow"
    assert line["level"] == "warning"
    assert line["logger"] == "inferflux.test"
    assert line["request_id"] == "rid-log-1"
    assert "trace_id" not in line


def test_inside_a_span_the_line_names_the_trace_and_span(traced: object) -> None:
    traced(sample_ratio=1.0)  # type: ignore[operator]
    with telemetry.span("stage") as span:
        line = orjson.loads(JsonFormatter().format(_record("inside")))
    context = span.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")


def test_an_exception_is_logged_by_type_and_frames_without_its_message() -> None:
    user_text = "canary-91c2 " + "user text"
    try:
        raise ValueError(user_text)
    except ValueError:
        line = orjson.loads(JsonFormatter().format(_record("failed", sys.exc_info())))
    assert line["exception"] == "ValueError"
    assert "test_an_exception_is_logged" in line["stack"]
    assert "canary-91c2" not in orjson.dumps(line).decode()
