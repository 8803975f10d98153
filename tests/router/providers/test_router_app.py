"""The router's own front door serves provider routes and fallback chains (router/providers wired in).

Provider servers are fakes speaking OpenAI's wire format (external providers can't be reached
here); the router, the official SDK and the chain are real.
"""

from __future__ import annotations

import sys
from typing import Any

import openai
import pytest

from inferflux.crds.inferencemodel import SecretKeyRef
from inferflux.router.providers.secrets import env_name

KEY_REF = {"name": "provider-keys", "key": "apiKey"}
HELLO = [{"role": "user", "content": "hello"}]
# retry-after beyond the retry budget: the chain moves on instead of waiting.
RATE_LIMITED = {
    "status": 429,
    "body": {"error": {"message": "slow down", "type": "requests"}},
    "headers": {"retry-after": "30"},
}


@pytest.fixture
async def providers(start_fake: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """A fake provider behind a Secret-referenced key, and a fake runtime pod with no auth."""
    provider, runtime = await start_fake("openai"), await start_fake("openai")
    runtime.key = None
    assert provider.key is not None
    monkeypatch.setenv(env_name(SecretKeyRef(**KEY_REF)), provider.key)
    return provider, runtime


def _models(provider: Any, runtime: Any) -> dict[str, Any]:
    spec = {"name": "openai", "model": "gpt-x", "baseURL": provider.url + "/v1", "timeoutSeconds": 5}
    return {
        "gpt": {
            "name": "gpt",
            "engine": "provider",
            "provider": {**spec, "apiKeySecretRef": KEY_REF},
            "fallback": ["local"],
        },
        "local": {"name": "local", "engine": "llamacpp", "endpoints": [{"url": runtime.url}]},
    }


def _client(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


async def test_provider_route_is_served_by_its_provider(providers: Any, make_router: Any) -> None:
    provider, runtime = providers
    harness = await make_router(_models(provider, runtime))
    raw = await _client(harness.url).chat.completions.with_raw_response.create(model="gpt", messages=HELLO)
    assert raw.headers["x-inferflux-served-by"] == "gpt"
    assert raw.parse().model == "gpt"
    _, body = provider.requests[-1]  # the fake answers 401 unless the Secret's key was sent
    assert body["model"] == "gpt-x"  # the provider's own id, from the route


async def test_rate_limited_provider_falls_back_to_the_local_model(providers: Any, make_router: Any) -> None:
    provider, runtime = providers
    provider.faults.append(sys.modules["fake_common"].Fault(**RATE_LIMITED))  # loaded by conftest
    harness = await make_router(_models(provider, runtime))
    raw = await _client(harness.url).chat.completions.with_raw_response.create(
        model="gpt", messages=HELLO, stream=True
    )
    assert raw.headers["x-inferflux-served-by"] == "local"
    chunks = [chunk async for chunk in raw.parse()]
    assert {chunk.model for chunk in chunks} == {"local"}
    assert runtime.requests, "the local runtime answered"


async def test_completions_on_a_provider_route_is_a_clear_400(providers: Any, make_router: Any) -> None:
    harness = await make_router(_models(*providers))
    with pytest.raises(openai.BadRequestError, match="use /v1/chat/completions"):
        await _client(harness.url).completions.create(model="gpt", prompt="hi")


async def test_provider_tokens_count_by_tenant_too(providers: Any, make_router: Any) -> None:
    provider, runtime = providers
    harness = await make_router(_models(provider, runtime))
    answer = await _client(harness.url).chat.completions.create(model="gpt", messages=HELLO)
    assert answer.usage is not None
    assert answer.usage.completion_tokens > 0
    registry = harness.router.metrics.registry
    labels = {"tenant": "-", "kind": "completion"}  # authentication is off in this harness
    assert (
        registry.get_sample_value("inferflux_router_tenant_tokens_total", labels)
        == answer.usage.completion_tokens
    )
