"""The OTel metrics bridge: GenAI metric names and units, over real OTLP/HTTP protobuf."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from inferflux.router.telemetry import bridge
from inferflux.router.telemetry.settings import MetricsBridgeSettings, TraceSettingsError

SECONDS = "s"


def test_the_bridge_is_off_by_default() -> None:
    settings = MetricsBridgeSettings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert not settings.enabled
    assert bridge.start(settings, "inferflux-router") is None


def test_settings_name_the_metrics_endpoint_and_refuse_a_bridge_with_nowhere_to_send() -> None:
    base = MetricsBridgeSettings.from_env(
        {"INFERFLUX_OTEL_METRICS": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}
    )
    assert base.endpoint == "http://collector:4318/v1/metrics"
    explicit = MetricsBridgeSettings.from_env(
        {
            "INFERFLUX_OTEL_METRICS": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://metrics:9999/in",
            "OTEL_METRIC_EXPORT_INTERVAL": "5000",
        }
    )
    assert (explicit.endpoint, explicit.interval_ms) == ("http://metrics:9999/in", 5000)
    with pytest.raises(TraceSettingsError, match="INFERFLUX_OTEL_METRICS needs"):
        MetricsBridgeSettings.from_env({"INFERFLUX_OTEL_METRICS": "true"})
    with pytest.raises(TraceSettingsError, match="OTEL_METRIC_EXPORT_INTERVAL"):
        MetricsBridgeSettings.from_env(
            {
                "INFERFLUX_OTEL_METRICS": "true",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c",
                "OTEL_METRIC_EXPORT_INTERVAL": "x",
            }
        )


async def test_requests_through_the_router_reach_an_otlp_receiver_under_genai_names(
    receiver: Any, mocks: Any, make_router: Any, route: Any
) -> None:
    settings = MetricsBridgeSettings(enabled=True, endpoint=receiver.url, interval_ms=60_000)
    genai_metrics = bridge.start(settings, "inferflux-router")
    assert genai_metrics is not None
    try:
        backend = await mocks(delay_ms=5.0)
        harness = await make_router({"m": route([backend.url], name="m")})
        harness.router.openai.genai_metrics = genai_metrics
        stream = {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 4,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        async with harness.post("/v1/chat/completions", stream) as response:
            assert response.status == 200
            await response.read()
        async with harness.post(
            "/v1/completions", {"model": "m", "prompt": "x", "max_tokens": 2}
        ) as response:
            assert response.status == 200
        async with harness.post("/v1/chat/completions", {**stream, "model": "missing"}) as response:
            assert response.status == 404
        # The SDK's export is synchronous HTTP: off the event loop, which serves the receiver.
        assert await asyncio.to_thread(genai_metrics.flush)
    finally:
        await asyncio.to_thread(genai_metrics.shutdown)

    assert receiver.content_types
    assert set(receiver.content_types) == {"application/x-protobuf"}
    assert receiver.service_names() == {"inferflux-router"}
    points = receiver.points()
    units = {point.metric: point.unit for point in points}
    assert units == {
        "gen_ai.client.token.usage": "{token}",
        "gen_ai.client.operation.duration": SECONDS,
        "gen_ai.server.request.duration": SECONDS,
        "gen_ai.server.time_to_first_token": SECONDS,
        "gen_ai.server.time_per_output_token": SECONDS,
    }

    def one(metric: str, **attributes: Any) -> list[Any]:
        return [
            p
            for p in points
            if p.metric == metric and all(p.attributes.get(k) == v for k, v in attributes.items())
        ]

    chat = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "inferflux", "gen_ai.request.model": "m"}
    (output,) = one("gen_ai.client.token.usage", **chat, **{"gen_ai.token.type": "output"})
    assert (output.count, output.sum) == (1, 4)
    (first_token,) = one("gen_ai.server.time_to_first_token", **chat)
    assert first_token.count == 1
    assert "error.type" not in first_token.attributes
    (per_token,) = one("gen_ai.server.time_per_output_token", **chat)
    assert per_token.count == 1
    assert per_token.sum > 0
    (completion,) = one("gen_ai.client.operation.duration", **{"gen_ai.operation.name": "text_completion"})
    assert completion.count == 1
    (failed,) = one("gen_ai.server.request.duration", **{"gen_ai.request.model": "missing"})
    assert failed.attributes["error.type"] == "not_found"
    # A failure has no per-token timings, and nothing names a request.
    assert not one("gen_ai.server.time_to_first_token", **{"gen_ai.request.model": "missing"})
    assert not any("request_id" in key for point in points for key in point.attributes)
