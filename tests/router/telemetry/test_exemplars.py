"""OpenMetrics exemplars on the router's latency histograms name the trace of a kept request."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import SpanKind
from prometheus_client.openmetrics.parser import text_string_to_metric_families

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}


async def _scrape(harness: Any, accept: str) -> tuple[str, str]:
    async with harness.session.get(harness.url + "/metrics", headers={"accept": accept}) as response:
        assert response.status == 200
        return response.headers["content-type"], await response.text()


def _exemplars(text: str, family: str) -> list[str]:
    """The trace ids of every exemplar on the histogram ``family``'s buckets."""
    found = []
    for metric in text_string_to_metric_families(text):
        if metric.name != family:
            continue
        for sample in metric.samples:
            if sample.exemplar is not None:
                found.append(sample.exemplar.labels["trace_id"])
    return found


def _chat_trace_ids(exported: Any) -> set[str]:
    """The trace ids of the exported chat requests (the scrapes are traced too)."""
    return {
        f"{span.context.trace_id:032x}"
        for span in exported.spans()
        if span.kind is SpanKind.SERVER and span.name == "POST /v1/chat/completions"
    }


async def test_a_sampled_request_leaves_its_trace_id_as_an_exemplar(
    traced: Any, mocks: Any, make_router: Any, route: Any
) -> None:
    exported = traced(sample_ratio=1.0)
    backend = await mocks()
    harness = await make_router({"m": route([backend.url], name="m")})
    async with harness.post("/v1/chat/completions", {**CHAT, "stream": True}) as response:
        assert response.status == 200
        await response.read()
    content_type, text = await _scrape(harness, OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text")
    (trace_id,) = _chat_trace_ids(exported)
    assert _exemplars(text, "inferflux_router_request_duration_seconds") == [trace_id]
    assert _exemplars(text, "inferflux_router_ttft_seconds") == [trace_id]


async def test_the_classic_text_format_has_no_exemplars(
    traced: Any, mocks: Any, make_router: Any, route: Any
) -> None:
    traced(sample_ratio=1.0)
    backend = await mocks()
    harness = await make_router({"m": route([backend.url], name="m")})
    async with harness.post("/v1/chat/completions", CHAT) as response:
        assert response.status == 200
    content_type, text = await _scrape(harness, "text/plain")
    assert content_type.startswith("text/plain")
    assert "inferflux_router_request_duration_seconds_bucket" in text
    assert "trace_id" not in text


async def test_only_traces_that_are_exported_become_exemplars(
    traced: Any, mocks: Any, make_router: Any, route: Any
) -> None:
    exported = traced(sample_ratio=0.0)  # successes are never kept, failures always
    backend = await mocks()
    harness = await make_router({"m": route([backend.url], name="m")})
    async with harness.post("/v1/chat/completions", CHAT) as response:
        assert response.status == 200
    async with harness.post("/v1/chat/completions", {**CHAT, "model": "missing"}) as response:
        assert response.status == 404
    _, text = await _scrape(harness, OPENMETRICS)
    (failed,) = _chat_trace_ids(exported)  # only the failure was exported
    assert _exemplars(text, "inferflux_router_request_duration_seconds") == [failed]


async def test_no_exemplar_while_tracing_is_off(mocks: Any, make_router: Any, route: Any) -> None:
    backend = await mocks()
    harness = await make_router({"m": route([backend.url], name="m")})
    async with harness.post("/v1/chat/completions", CHAT) as response:
        assert response.status == 200
    _, text = await _scrape(harness, OPENMETRICS)
    assert "inferflux_router_request_duration_seconds_bucket" in text
    assert _exemplars(text, "inferflux_router_request_duration_seconds") == []
