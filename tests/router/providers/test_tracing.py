"""Provider calls carry the request id and, with tracing on, a client span's ``traceparent``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from inferflux.crds.inferencemodel import SecretKeyRef
from inferflux.router import telemetry
from inferflux.router.providers.secrets import env_name

KEY_REF = {"name": "provider-keys", "key": "apiKey"}
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
async def provider(start_fake: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    fake = await start_fake("openai")
    monkeypatch.setenv(env_name(SecretKeyRef(**KEY_REF)), fake.key)
    return fake


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exported = InMemorySpanExporter()
    telemetry.install(telemetry.TraceSettings(sample_ratio=1.0), exporter=exported)
    yield exported
    telemetry.uninstall()


def _models(fake: Any) -> dict[str, Any]:
    spec = {"name": "openai", "model": "gpt-x", "baseURL": fake.url + "/v1", "apiKeySecretRef": KEY_REF}
    return {"gpt": {"name": "gpt", "engine": "provider", "provider": spec}}


async def _chat(url: str, rid: str) -> None:
    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt", messages=HELLO, max_tokens=4, extra_headers={"x-request-id": rid}
    )
    assert raw.headers["x-request-id"] == rid
    await client.close()


async def test_the_provider_receives_the_request_id_without_tracing(provider: Any, make_router: Any) -> None:
    harness = await make_router(_models(provider))
    await _chat(harness.url, "rid-provider-1")
    headers, _ = provider.requests[-1]
    lowered = {name.lower(): value for name, value in headers.items()}
    assert lowered["x-request-id"] == "rid-provider-1"
    assert "traceparent" not in lowered


async def test_a_provider_call_is_a_client_span_named_in_its_traceparent(
    provider: Any, make_router: Any, exporter: InMemorySpanExporter
) -> None:
    harness = await make_router(_models(provider))
    await _chat(harness.url, "rid-provider-2")
    headers, _ = provider.requests[-1]
    lowered = {name.lower(): value for name, value in headers.items()}
    assert lowered["x-request-id"] == "rid-provider-2"
    tracing = telemetry.current_tracing()
    assert tracing is not None
    assert tracing.flush()
    spans = exporter.get_finished_spans()
    client = next(span for span in spans if span.kind is SpanKind.CLIENT)
    server = next(span for span in spans if span.kind is SpanKind.SERVER)
    assert client.name == "chat gpt-x"
    assert client.attributes["gen_ai.provider.name"] == "openai"
    assert client.attributes["gen_ai.request.model"] == "gpt-x"
    assert client.attributes["gen_ai.response.model"] == "gpt-x"
    assert client.attributes["gen_ai.request.max_tokens"] == 4
    assert client.attributes["inferflux.served_model"] == "gpt"
    assert client.parent is not None
    assert client.parent.span_id == server.context.span_id
    _, trace_id, span_id, _ = lowered["traceparent"].split("-")
    assert (int(trace_id, 16), int(span_id, 16)) == (client.context.trace_id, client.context.span_id)
