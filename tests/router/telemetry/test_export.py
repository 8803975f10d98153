"""OTLP/JSON export: the document a collector receives, a bounded queue, failures counted."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import orjson
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import SpanKind

from inferflux.router.telemetry.export import OtlpJsonSink
from inferflux.router.telemetry.spans import Recorder, TraceRecord

RESOURCE = Resource.create({"service.name": "inferflux-test"})


def _span(name: str, trace: TraceRecord, parent: int = 0) -> Recorder:
    span = Recorder(
        name, SpanKind.SERVER, trace, parent, False, {"n": 1, "tags": ["a"]}, 1_000, lambda s: None
    )
    span.add_event("first_token", {"position": 2}, 1_500)
    span.end_time = 2_000
    return span


@pytest.fixture
def collector() -> Iterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["content-length"])))
            assert self.headers["content-type"] == "application/json"
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", received
    server.shutdown()


def test_kept_spans_arrive_as_one_otlp_json_document(collector: tuple[str, list[bytes]]) -> None:
    url, received = collector
    sink = OtlpJsonSink(url, RESOURCE, {"OTEL_BSP_SCHEDULE_DELAY": "50"})
    trace = TraceRecord(0xABC)
    root = _span("root", trace)
    sink.submit([_span("child", trace, parent=root.span_id), root])
    assert sink.flush()
    sink.close()
    (body,) = received
    (resource_spans,) = orjson.loads(body)["resourceSpans"]
    assert {"key": "service.name", "value": {"stringValue": "inferflux-test"}} in resource_spans["resource"][
        "attributes"
    ]
    child, parent = resource_spans["scopeSpans"][0]["spans"]
    assert parent["traceId"] == f"{0xABC:032x}"
    assert child["parentSpanId"] == parent["spanId"]
    assert "parentSpanId" not in parent
    assert parent["kind"] == 2
    assert (parent["startTimeUnixNano"], parent["endTimeUnixNano"]) == ("1000", "2000")
    assert {"key": "n", "value": {"intValue": "1"}} in parent["attributes"]
    assert {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}} in parent[
        "attributes"
    ]
    assert parent["events"][0]["name"] == "first_token"
    assert sink.sent == 2


def test_a_full_queue_drops_and_an_unreachable_collector_counts_failures() -> None:
    sink = OtlpJsonSink("http://127.0.0.1:9/v1/traces", RESOURCE, {"OTEL_BSP_MAX_QUEUE_SIZE": "3"})
    trace = TraceRecord(1)
    sink.submit([_span(f"s{i}", trace) for i in range(5)])
    assert sink.dropped == 2
    assert sink.flush()
    sink.close()
    assert (sink.failed, sink.sent) == (3, 0)
