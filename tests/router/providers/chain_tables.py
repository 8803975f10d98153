"""Routing tables for chain tests: provider links on fake servers, local links on a runtime URL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from inferflux.crds.inferencemodel import SecretKeyRef
from inferflux.crds.routing import RoutingTable
from inferflux.router.providers import FallbackChain, LocalSecrets, Pool, PoolSettings
from inferflux.router.providers.metrics import ProviderMetrics
from inferflux.router.providers.secrets import env_name

# One registry for every chain the tests build, read by the `metric` fixture.
METRICS = ProviderMetrics()
Start = Callable[[str], Awaitable[Any]]
KEY_REF = {"name": "provider-keys", "key": "apiKey"}


def provider(name: str, server: Any, timeout: float, fallback: list[str]) -> dict[str, Any]:
    spec = {"name": name, "model": f"{name}-model", "baseURL": server.url + "/v1", "timeoutSeconds": timeout}
    return {
        "name": name,
        "engine": "provider",
        "provider": {**spec, "apiKeySecretRef": KEY_REF},
        "fallback": fallback,
    }


def local(url: str) -> dict[str, Any]:
    return {"name": "local", "engine": "llamacpp", "endpoints": [{"url": url}]}


def make_chain(models: dict[str, Any], key: str, **settings: Any) -> FallbackChain:
    environ = {env_name(SecretKeyRef(**KEY_REF)): key}
    table = RoutingTable.model_validate({"models": models})
    return FallbackChain(table, Pool(LocalSecrets(environ), PoolSettings(**settings)), metrics=METRICS)


def three_links(a: Any, b: Any, runtime_url: str, **settings: Any) -> FallbackChain:
    """``primary`` (OpenAI on ``a``, 2 s) → ``second`` (Groq on ``b``, 0.5 s) → ``local`` (the runtime)."""
    b.key = a.key
    models = {
        "primary": provider("openai", a, 2.0, ["second", "local"]),
        "second": provider("groq", b, 0.5, []),
        "local": local(runtime_url),
    }
    return make_chain(models, a.key, **settings)
