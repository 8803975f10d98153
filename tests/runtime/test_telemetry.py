"""The runtime's request ids and request traces (engine timeline → spans), without and with the model."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.requests import Request
from starlette.responses import Response

from inferflux.router import telemetry
from inferflux.runtime.engine import Finish, Job, Timeline
from inferflux.runtime.telemetry import RequestTrace, request_id

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exported = InMemorySpanExporter()
    telemetry.install(telemetry.TraceSettings(sample_ratio=1.0), exporter=exported)
    yield exported
    telemetry.uninstall()


def _request(headers: dict[str, str]) -> Request:
    raw = [(name.encode(), value.encode()) for name, value in headers.items()]
    return Request({"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": raw})


def test_request_id_is_the_callers_when_sane() -> None:
    assert request_id({"x-request-id": "abc-123"}) == "abc-123"
    generated = {request_id({}), request_id({"x-request-id": "x" * 129}), request_id({"x-request-id": "é"})}
    assert len(generated) == 3
    assert all(len(each) == 24 for each in generated)


def test_the_engine_timeline_becomes_child_spans_of_the_callers_trace(exporter: InMemorySpanExporter) -> None:
    request = _request({"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    traced = RequestTrace.begin(request, "chat", "smol", "rid-1")
    start = traced.started
    traced.describe({"model": "smol", "max_tokens": 5, "stream": True}, "chatcmpl-rid-1")
    traced.tokenize_span = (start + 1_000, start + 2_000)
    job = Job(prompt=[1, 2, 3], max_tokens=5)
    job.timeline = Timeline(
        submitted=start + 3_000,
        admitted=start + 5_000,
        first_token=start + 9_000,
        finished=start + 20_000,
        slot=1,
        batch_at_start=2,
        reused=2,
    )
    job.finish = Finish("length", prompt_tokens=3, completion_tokens=5, cached_tokens=2)
    traced.watch(job)
    traced.finish_with(Response(b"{}"))
    telemetry.current_tracing().flush()  # type: ignore[union-attr]
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {"chat smol", "tokenize", "queue_wait", "prefill", "decode"}
    server = spans["chat smol"]
    assert server.kind is SpanKind.SERVER
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == PARENT_ID
    assert server.attributes["gen_ai.response.id"] == "chatcmpl-rid-1"
    assert server.attributes["inferflux.request_id"] == "rid-1"
    assert server.attributes["gen_ai.request.stream"] is True
    assert server.attributes["gen_ai.usage.output_tokens"] == 5
    assert server.attributes["gen_ai.usage.cache_read.input_tokens"] == 2
    assert server.attributes["gen_ai.response.finish_reasons"] == ("length",)
    assert server.attributes["gen_ai.response.time_to_first_chunk"] == pytest.approx(9e-6)
    assert [event.name for event in server.events] == ["first_token"]
    for name in ("tokenize", "queue_wait", "prefill", "decode"):
        assert spans[name].parent.span_id == server.context.span_id  # type: ignore[union-attr]
    assert (spans["queue_wait"].start_time, spans["queue_wait"].end_time) == (start + 3_000, start + 5_000)
    assert (spans["prefill"].start_time, spans["prefill"].end_time) == (start + 5_000, start + 9_000)
    assert (spans["decode"].start_time, spans["decode"].end_time) == (start + 9_000, start + 20_000)
    assert spans["prefill"].attributes["inferflux.slot"] == 1
    assert spans["prefill"].attributes["inferflux.batch_size_at_start"] == 2


def test_a_cancelled_job_marks_the_request_failed(exporter: InMemorySpanExporter) -> None:
    traced = RequestTrace.begin(_request({}), "text_completion", "gemma", "rid-2")
    job = traced.watch(Job(prompt=[1], max_tokens=1))
    job.finish = Finish("cancelled", prompt_tokens=1)
    traced.end(200)
    telemetry.current_tracing().flush()  # type: ignore[union-attr]
    (span,) = exporter.get_finished_spans()
    assert span.parent is None
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "cancelled"


def test_tracing_off_costs_no_spans() -> None:
    assert telemetry.current_tracing() is None
    traced = RequestTrace.begin(_request({}), "chat", "m", "rid")
    assert not traced.recording
    with traced.tokenizing():
        pass
    assert traced.tokenize_span is None


@pytest.mark.slow
def test_the_runtime_answers_with_the_callers_request_id(runtime_url: str) -> None:
    response = httpx.post(
        runtime_url + "/v1/completions",
        json={"model": "gemma", "prompt": "The sky is", "max_tokens": 2},
        headers={"x-request-id": "caller-id-7"},
        timeout=60,
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "caller-id-7"
    assert response.json()["id"] == "cmpl-caller-id-7"
    bad = httpx.post(
        runtime_url + "/v1/completions", json={"prompt": 3}, headers={"x-request-id": "caller-id-8"}
    )
    assert bad.status_code == 400
    assert bad.headers["x-request-id"] == "caller-id-8"
