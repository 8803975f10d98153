"""The recent requests the admin console lists: the ring, the timings, and the trace link."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from inferflux.router import telemetry
from inferflux.router.pipeline import Call
from inferflux.router.recent_requests import GRANTED_NOTE, QUEUE_NOTE, RecentRequests, timings
from inferflux.router.telemetry.spans import TraceRecord

SECRET = "the prompt nobody may read back"
CHAT = {"model": "m", "messages": [{"role": "user", "content": SECRET}], "max_tokens": 3}
LINK = "http://jaeger.example:16686/trace/{trace_id}"


def call(request_id: str = "r1", **fields: Any) -> Call:
    return Call(request_id, "chat", "m", dict(CHAT), orjson.dumps(CHAT), **fields)


def test_the_ring_keeps_the_newest_requests_first() -> None:
    recent = RecentRequests(capacity=3)
    for number in range(5):
        recent.record(call(f"r{number}", status=200))
    assert [entry.request_id for entry in recent.entries()] == ["r4", "r3", "r2"]
    assert [entry.sequence for entry in recent.entries(limit=2)] == [5, 4]
    with pytest.raises(ValueError, match="at least 1"):
        RecentRequests(capacity=0)


def test_timings_come_from_the_dispatchers_notes_when_it_dispatched() -> None:
    dispatched = call(started=10.0, notes={QUEUE_NOTE: 0.5, GRANTED_NOTE: 10.75, "metrics.ttft": 1.0})
    assert timings(dispatched, 12.0) == (2.0, 0.5, 1.25, 1.0)
    refused = call(started=10.0)
    assert timings(refused, 10.25) == (0.25, None, None, None)


def test_an_entry_without_tracing_has_no_trace_and_no_link() -> None:
    recent = RecentRequests()
    recent.record(call(status=429, error="insufficient_quota"))
    (entry,) = recent.entries()
    view = entry.view(LINK)
    assert (view["status"], view["error"], view["traceId"], view["traceUrl"]) == (
        429,
        "insufficient_quota",
        None,
        None,
    )
    assert (view["queueMs"], view["upstreamMs"], view["ttftMs"]) == (None, None, None)


@pytest.mark.parametrize(
    ("decided", "kept", "shown"), [(False, False, None), (True, False, False), (True, True, True)]
)
def test_a_trace_link_is_offered_only_for_a_kept_trace(decided: bool, kept: bool, shown: bool | None) -> None:
    trace = TraceRecord(0xABC)
    trace.decided, trace.kept = decided, kept
    recent = RecentRequests()
    recent.record(call())
    entry = recent.entries()[0]
    entry = type(entry)(**{**{name: getattr(entry, name) for name in entry.__slots__}, "trace": trace})
    view = entry.view(LINK)
    assert view["traceId"] == f"{0xABC:032x}"
    assert view["traceKept"] is shown
    expected = f"http://jaeger.example:16686/trace/{0xABC:032x}" if shown else None
    assert view["traceUrl"] == expected
    assert entry.view("")["traceUrl"] is None, "no template configured: no link"


async def test_the_router_records_queue_upstream_and_first_chunk_times_but_no_content(
    mocks: Any, make_router: Any, route: Any
) -> None:
    backend = await mocks(delay_ms=100)  # 3 chunks 100 ms apart: the first request holds the slot
    harness = await make_router({"m": route([backend.url], maxConcurrency=1)})
    recent = RecentRequests()
    harness.router.pipeline.observe(recent.record)
    document = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}

    async def stream() -> None:
        async with harness.post("/v1/chat/completions", document) as response:
            assert response.status == 200
            await response.read()

    await asyncio.gather(stream(), stream())
    second, first = recent.entries()
    for entry in (first, second):
        assert (entry.status, entry.model, entry.route, entry.stream) == (200, "m", "chat", True)
        assert entry.queue is not None
        assert entry.upstream is not None
        assert entry.ttft is not None
        assert entry.queue + entry.upstream <= entry.total
        assert entry.ttft <= entry.total
    assert second.queue is not None
    assert second.queue >= 0.2, "it waited for the first stream's chunks"
    assert SECRET not in orjson.dumps([first.view(LINK), second.view(LINK)]).decode()


async def test_a_request_that_failed_before_dispatch_is_listed_without_dispatch_times(
    make_router: Any, route: Any
) -> None:
    harness = await make_router({"m": route(["http://127.0.0.1:9"])})
    recent = RecentRequests()
    harness.router.pipeline.observe(recent.record)
    async with harness.post("/v1/chat/completions", {**CHAT, "model": "unknown"}) as response:
        assert response.status == 404
    (entry,) = recent.entries()
    assert (entry.model, entry.status, entry.error) == ("unknown", 404, "not_found")
    assert (entry.queue, entry.upstream, entry.ttft) == (None, None, None)


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    """Tracing on, every successful trace kept, into memory."""
    exporter = InMemorySpanExporter()
    telemetry.install(telemetry.TraceSettings(endpoint="memory", sample_ratio=1.0), exporter=exporter)
    yield exporter
    telemetry.uninstall()


async def test_the_entry_names_the_exported_trace_of_its_request(
    exported: InMemorySpanExporter, mocks: Any, make_router: Any, route: Any
) -> None:
    backend = await mocks()
    harness = await make_router({"m": route([backend.url])})
    recent = RecentRequests()
    harness.router.pipeline.observe(recent.record)
    async with harness.post("/v1/chat/completions", CHAT) as response:
        assert response.status == 200
    (entry,) = recent.entries()
    for _ in range(200):  # the server span ends just after the last byte: its trace is decided then
        if entry.kept is not None:
            break
        await asyncio.sleep(0.01)
    tracing = telemetry.current_tracing()
    assert tracing is not None
    assert tracing.flush()
    servers = [span for span in exported.get_finished_spans() if span.name.startswith("POST ")]
    assert [f"{span.context.trace_id:032x}" for span in servers] == [entry.trace_id]
    assert entry.view(LINK)["traceUrl"] == f"http://jaeger.example:16686/trace/{entry.trace_id}"
