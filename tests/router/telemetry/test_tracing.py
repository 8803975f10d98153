"""Traces through the real router on a fake backend: span tree, traceparent, sampling, scrubbing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from inferflux.router import telemetry
from inferflux.router.errors import ErrorCode, UpstreamError

CANARY = "canary-5d1e0c purple elephant"


def _by_trace(spans: list[Any]) -> dict[int, list[ReadableSpan]]:
    traces: dict[int, list[ReadableSpan]] = {}
    for span in spans:
        traces.setdefault(span.context.trace_id, []).append(span)
    return traces


async def test_the_router_traces_a_request_and_sends_traceparent_upstream(
    traced: Any, mocks: Any, make_router: Any, route: Any
) -> None:
    exported = traced(sample_ratio=1.0)
    backend = await mocks()
    harness = await make_router({"m": route([backend.url], name="m")})
    request = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 3,
        "temperature": 0.5,
    }
    async with harness.post("/v1/chat/completions", request, headers={"x-request-id": "rid-42"}) as response:
        assert response.status == 200
        assert response.headers["x-request-id"] == "rid-42"
        await response.read()
    spans = exported.spans()
    server = next(span for span in spans if span.kind is SpanKind.SERVER)
    client = next(span for span in spans if span.kind is SpanKind.CLIENT)
    assert server.name == "POST /v1/chat/completions"
    assert server.attributes["inferflux.request_id"] == "rid-42"
    assert server.attributes["http.response.status_code"] == 200
    assert client.parent is not None
    assert client.parent.span_id == server.context.span_id
    assert client.name == "chat m"
    assert client.attributes["gen_ai.operation.name"] == "chat"
    assert client.attributes["gen_ai.request.model"] == "m"
    assert client.attributes["gen_ai.request.max_tokens"] == 3
    assert client.attributes["gen_ai.request.temperature"] == 0.5
    assert client.attributes["gen_ai.request.stream"] is False
    assert client.attributes["gen_ai.response.finish_reasons"] == ("length",)
    assert client.attributes["gen_ai.usage.output_tokens"] == 3
    assert client.attributes["server.address"] == "127.0.0.1"
    (traceparent,) = backend.state.traceparents
    _version, trace_id, span_id, _flags = traceparent.split("-")
    assert int(trace_id, 16) == client.context.trace_id
    assert int(span_id, 16) == client.context.span_id
    assert backend.state.request_ids == ["rid-42"]


async def test_a_failed_upstream_marks_the_spans(
    traced: Any, mocks: Any, make_router: Any, route: Any
) -> None:
    exported = traced(sample_ratio=0.0)
    backend = await mocks(fail_status=500)
    harness = await make_router({"m": route([backend.url], name="m")})
    async with harness.post("/v1/chat/completions", {"model": "m", "messages": []}) as response:
        assert response.status == 500
    spans = exported.spans()
    assert {span.kind for span in spans} == {SpanKind.SERVER, SpanKind.CLIENT}
    for span in spans:
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == "500"


async def test_sampling_keeps_every_failure_and_about_the_ratio_of_successes(
    traced: Any, mocks: Any, make_router: Any, route: Any
) -> None:
    exported = traced(sample_ratio=0.01)
    good, bad = await mocks(keep_bodies=False), await mocks(fail_status=503, keep_bodies=False)
    harness = await make_router({"ok": route([good.url], name="ok"), "bad": route([bad.url], name="bad")})
    plan = ["ok"] * 950 + ["bad"] * 40 + ["missing"] * 10  # 50 failures: 503 upstream, 404 unknown model
    statuses: list[int] = []

    async def send(models: list[str]) -> None:
        for model in models:
            async with harness.post(
                "/v1/completions", {"model": model, "prompt": "x", "max_tokens": 1}
            ) as answer:
                await answer.read()
                statuses.append(answer.status)

    await asyncio.gather(*(send(plan[start::8]) for start in range(8)))
    assert sorted(set(statuses)) == [200, 404, 503]
    roots = [span for span in exported.spans() if span.kind is SpanKind.SERVER]
    failed = [span for span in roots if span.status.status_code is StatusCode.ERROR]
    succeeded = [span for span in roots if span.status.status_code is not StatusCode.ERROR]
    assert len(failed) == 50
    assert sorted({span.attributes["http.response.status_code"] for span in failed}) == [404, 503]
    assert len(succeeded) <= 25  # binomial(950, 0.01): 9.5 expected, 25 is 5 standard deviations
    tracing = telemetry.current_tracing()
    assert tracing is not None
    assert tracing.sampler.kept_traces == len(roots)
    assert tracing.sampler.kept_traces + tracing.sampler.discarded_traces == 1000


async def test_content_is_never_exported_unless_captured(
    traced: Any, mocks: Any, make_router: Any, route: Any
) -> None:
    request = {"model": "m", "messages": [{"role": "user", "content": CANARY}], "max_tokens": 2}
    for capture in (False, True):
        exported = traced(sample_ratio=1.0, capture_content=capture)
        backend = await mocks()
        harness = await make_router({"m": route([backend.url], name="m")})
        async with harness.post("/v1/chat/completions", request) as response:
            assert response.status == 200
        dumped = json.dumps([span.to_json() for span in exported.spans()])
        assert (CANARY in dumped) is capture
        telemetry.uninstall()


async def test_each_stage_of_the_pipeline_has_its_span_under_the_server_span(
    traced: Any, mocks: Any, make_router: Any, route: Any
) -> None:
    class Refuser:
        name = "budget"

        async def admit(self, call: Any) -> None:
            if call.document.get("max_tokens") == 99:
                raise UpstreamError(ErrorCode.INSUFFICIENT_QUOTA, "no")

        async def finish(self, call: Any) -> None:
            return None

        def output(self, call: Any) -> None:
            return None

    exported = traced(sample_ratio=1.0)
    backend = await mocks()
    harness = await make_router({"m": route([backend.url], name="m")}, stages=[Refuser()])
    for max_tokens in (3, 99):
        document = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": max_tokens}
        async with harness.post("/v1/chat/completions", document) as response:
            await response.read()
    spans = exported.spans()
    stages = [span for span in spans if span.name == "budget"]
    assert len(stages) == 2
    servers = {span.context.span_id for span in spans if span.kind is SpanKind.SERVER}
    assert all(span.parent is not None and span.parent.span_id in servers for span in stages)
    assert sorted(span.status.status_code is StatusCode.ERROR for span in stages) == [False, True]
