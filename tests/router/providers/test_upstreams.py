"""From routing-table entries to upstreams: adapters per provider, key rotation, endpoint rotation."""

from __future__ import annotations

from typing import Any

import pytest
from fake_common import failure

from inferflux.crds.inferencemodel import SecretKeyRef
from inferflux.crds.routing import ModelRoute, ProviderRoute, RoutingTable
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.providers import FallbackChain
from inferflux.router.providers.anthropic_adapter import AnthropicAdapter
from inferflux.router.providers.backoff import GROQ
from inferflux.router.providers.openai_adapter import OpenAIAdapter
from inferflux.router.providers.upstreams import Pool, build_adapter


class Keys:
    """A secret source whose value the test rotates; it counts reads and invalidations."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.invalidated: list[tuple[str, str]] = []

    async def get(self, namespace: str, ref: SecretKeyRef) -> str:
        return self.value

    def invalidate(self, namespace: str, ref: SecretKeyRef) -> None:
        self.invalidated.append((namespace, ref.name))


def provider_route(name: str, base_url: str | None = None, model: str = "llama-3.1-8b-instant") -> ModelRoute:
    spec: dict[str, Any] = {"name": name, "model": model, "apiKeySecretRef": {"name": "k", "key": "v"}}
    if base_url:
        spec["baseURL"] = base_url
    return ModelRoute.model_validate(
        {"name": "m", "engine": "provider", "namespace": "team", "provider": spec}
    )


async def test_groq_uses_its_base_url_the_routes_model_and_aggressive_backoff() -> None:
    [upstream] = await Pool(Keys("gsk-1")).upstreams("fast", provider_route("groq"))
    assert isinstance(upstream.adapter, OpenAIAdapter)
    assert upstream.adapter.upstream == "groq:https://api.groq.com/openai/v1:llama-3.1-8b-instant"
    assert upstream.policy is GROQ
    assert upstream.secret == ("team", SecretKeyRef(name="k", key="v"))


def test_each_provider_gets_its_adapter() -> None:
    anthropic = build_adapter(ProviderRoute(name="anthropic", model="claude-x"), "k")
    assert isinstance(anthropic, AnthropicAdapter)
    assert anthropic.upstream == "anthropic:https://api.anthropic.com:claude-x"
    compatible = build_adapter(
        ProviderRoute(name="openai-compatible", model="m", baseURL="http://vllm:8000/v1"), None
    )
    assert compatible.upstream == "openai-compatible:http://vllm:8000/v1:m"
    with pytest.raises(UpstreamError) as raised:
        build_adapter(ProviderRoute(name="openai-compatible", model="m"), None)
    assert raised.value.code is ErrorCode.UNAVAILABLE


async def test_adapter_is_reused_until_the_key_rotates() -> None:
    keys = Keys("sk-one-1111")
    pool = Pool(keys)
    route = provider_route("openai")
    [first] = await pool.upstreams("m", route)
    [again] = await pool.upstreams("m", route)
    assert again.adapter is first.adapter
    keys.value = "sk-two-2222"
    [rotated] = await pool.upstreams("m", route)
    assert rotated.adapter is not first.adapter
    assert rotated.breaker is first.breaker  # health history belongs to the upstream, not the key


async def test_runtime_endpoints_rotate_and_have_their_own_breakers() -> None:
    route = ModelRoute.model_validate(
        {
            "name": "local",
            "engine": "llamacpp",
            "endpoints": [{"url": "http://a:8080"}, {"url": "http://b:8080/"}],
        }
    )
    pool = Pool(Keys(""))
    first = [u.adapter.upstream for u in await pool.upstreams("local", route)]
    second = [u.adapter.upstream for u in await pool.upstreams("local", route)]
    assert first == ["runtime:http://a:8080/v1:local", "runtime:http://b:8080/v1:local"]
    assert second == list(reversed(first))
    assert await pool.upstreams("local", ModelRoute(name="local", engine="llamacpp")) == []


async def test_a_rejected_key_is_invalidated_so_the_next_request_rereads_it(openai_server: Any) -> None:
    keys = Keys("sk-stale-0000")
    table = RoutingTable.model_validate(
        {"models": {"m": provider_route("openai", openai_server.url + "/v1").model_dump(by_alias=True)}}
    )
    chain = FallbackChain(table, Pool(keys))
    raised = await failure(chain.chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
    assert raised.code is ErrorCode.AUTH
    assert keys.invalidated == [("team", "k")]
    keys.value = openai_server.key
    served = await chain.chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert served.model == "m"


async def test_a_route_without_endpoints_falls_through() -> None:
    table = RoutingTable.model_validate(
        {"models": {"cold": {"name": "cold", "engine": "llamacpp", "fallback": []}}}
    )
    raised = await failure(FallbackChain(table, Pool(Keys(""))).chat({"model": "cold", "messages": []}))
    assert raised.code is ErrorCode.UNAVAILABLE
    missing_model = await failure(FallbackChain(table, Pool(Keys(""))).chat({"messages": []}))
    assert missing_model.code is ErrorCode.BAD_REQUEST


async def test_closing_the_chain_closes_its_adapters(openai_server: Any) -> None:
    table = RoutingTable.model_validate(
        {"models": {"m": provider_route("openai", openai_server.url + "/v1").model_dump(by_alias=True)}}
    )
    keys = Keys(openai_server.key)
    chain = FallbackChain(table, Pool(keys))
    await chain.chat({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    [upstream] = await chain.pool.upstreams("m", table.models["m"])
    await chain.aclose()
    assert upstream.adapter._client.is_closed()  # type: ignore[attr-defined]


async def test_any_openai_compatible_base_url_serves_a_route(openai_server: Any) -> None:
    route = provider_route("openai-compatible", openai_server.url + "/v1", model="Qwen/Qwen2.5-7B-Instruct")
    table = RoutingTable.model_validate({"models": {"vllm": route.model_dump(by_alias=True)}})
    served = await FallbackChain(table, Pool(Keys(openai_server.key))).chat(
        {"model": "vllm", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert served.model == "vllm"
    assert served.body["choices"][0]["message"]["content"] == "echo: hi"
    assert openai_server.requests[-1][1]["model"] == "Qwen/Qwen2.5-7B-Instruct"


async def test_a_route_without_a_model_takes_it_from_the_routers_environment() -> None:
    pool = Pool(Keys("gsk-1"), environ={"INFERFLUX_GROQ_MODEL": "llama-3.3-70b-versatile"})
    [upstream] = await pool.upstreams("fast", provider_route("groq", model=""))
    assert upstream.adapter.upstream == "groq:https://api.groq.com/openai/v1:llama-3.3-70b-versatile"
    named = Pool(Keys("gsk-1"), environ={"INFERFLUX_GROQ_MODEL": "other"})
    [upstream] = await named.upstreams("fast", provider_route("groq"))
    assert upstream.adapter.upstream.endswith(":llama-3.1-8b-instant"), "the route's own model wins"


async def test_a_route_without_any_model_id_says_where_to_set_one() -> None:
    pool = Pool(Keys("k"), environ={})
    with pytest.raises(UpstreamError) as raised:
        await pool.upstreams("fast", provider_route("openai-compatible", "http://vllm:8000/v1", model=""))
    assert raised.value.code == ErrorCode.UNAVAILABLE
    assert "spec.provider.model" in raised.value.message
    assert "INFERFLUX_OPENAI_COMPATIBLE_MODEL" in raised.value.message
