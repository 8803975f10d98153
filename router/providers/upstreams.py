"""From a routing-table entry to callable upstreams: adapters, their breakers and retry policies.

A served name resolves to one *link* of a fallback chain. A provider route is one upstream (its
adapter built with the key read from the referenced Secret); a local route is one upstream per
Ready runtime endpoint, reached through the OpenAI-compatible adapter at ``<endpoint>/v1``.
Adapters and breakers live as long as the pool, keyed by the upstream's secret-free identity, so
connection pools and failure counts survive routing-table updates; an adapter is rebuilt when its
key changes (rotation).
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from inferflux.crds.inferencemodel import ProviderName, SecretKeyRef
from inferflux.crds.routing import ModelRoute, ProviderRoute
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.providers import backoff
from inferflux.router.providers.anthropic_adapter import AnthropicAdapter
from inferflux.router.providers.base import Adapter
from inferflux.router.providers.breaker import Breaker
from inferflux.router.providers.openai_adapter import GROQ_BASE_URL, OPENAI_BASE_URL, OpenAIAdapter
from inferflux.router.providers.secrets import SecretSource

RUNTIME = "runtime"
_DEFAULT_BASE_URLS = {ProviderName.OPENAI: OPENAI_BASE_URL, ProviderName.GROQ: GROQ_BASE_URL}


@dataclass(frozen=True)
class Upstream:
    """One callable upstream of a link, with what the chain needs around the call."""

    served: str
    adapter: Adapter
    breaker: Breaker
    policy: backoff.Backoff
    timeout_seconds: float
    secret: tuple[str, SecretKeyRef] | None = None


@dataclass
class PoolSettings:
    """Knobs of the upstream pool (the router maps its settings onto these)."""

    runtime_timeout_seconds: float = 60.0
    breaker_threshold: int = 5
    breaker_cooldown_seconds: float = 30.0
    default_backoff: backoff.Backoff = backoff.DEFAULT
    groq_backoff: backoff.Backoff = backoff.GROQ
    runtime_ca_file: str | None = None  # verifies https runtime endpoints (INFERFLUX_UPSTREAM_CA_FILE)


def policy_for(provider: str, settings: PoolSettings) -> backoff.Backoff:
    """The retry policy of a provider: Groq gets the aggressive rate-limit mode (seeds S6c)."""
    return settings.groq_backoff if provider == ProviderName.GROQ else settings.default_backoff


def model_env_name(provider: str) -> str:
    """The router's environment variable naming a provider's default model id (INFERFLUX_GROQ_MODEL)."""
    return f"INFERFLUX_{provider.upper().replace('-', '_')}_MODEL"


def with_model(route: ProviderRoute, environ: Mapping[str, str]) -> ProviderRoute:
    """``route`` with its model id: its own, else the one its provider's env variable names.

    A route with neither cannot be served; the error names both places to set it.
    """
    if route.model:
        return route
    variable = model_env_name(route.name)
    model = environ.get(variable, "").strip()
    if not model:
        raise UpstreamError(
            ErrorCode.UNAVAILABLE,
            f"no model id for provider {route.name}: set spec.provider.model or the router's {variable}",
        )
    return route.model_copy(update={"model": model})


def build_adapter(route: ProviderRoute, api_key: str | None) -> Adapter:
    """The adapter for a provider route; the model id always comes from the route."""
    if route.name == ProviderName.ANTHROPIC:
        return AnthropicAdapter(
            model=route.model, base_url=route.base_url, api_key=api_key, timeout_seconds=route.timeout_seconds
        )
    base_url = route.base_url or _DEFAULT_BASE_URLS.get(route.name)
    if not base_url:
        raise UpstreamError(ErrorCode.UNAVAILABLE, f"provider {route.name} needs a baseURL in its route")
    return OpenAIAdapter(
        provider=str(route.name),
        model=route.model,
        base_url=base_url,
        api_key=api_key,
        timeout_seconds=route.timeout_seconds,
    )


@dataclass
class Pool:
    """Adapters and breakers by upstream identity, built on first use."""

    secrets: SecretSource
    settings: PoolSettings = field(default_factory=PoolSettings)
    build: Callable[[ProviderRoute, str | None], Adapter] = build_adapter
    # Where provider model ids missing from a route come from (the router's own environment).
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    _adapters: dict[str, tuple[str, Adapter]] = field(default_factory=dict)
    _breakers: dict[str, Breaker] = field(default_factory=dict)
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    def breaker(self, upstream: str) -> Breaker:
        """The breaker of ``upstream`` (created closed)."""
        found = self._breakers.get(upstream)
        if found is None:
            found = Breaker(self.settings.breaker_threshold, self.settings.breaker_cooldown_seconds)
            self._breakers[upstream] = found
        return found

    async def _adapter(self, identity: str, fingerprint: str, make: Callable[[], Adapter]) -> Adapter:
        """The cached adapter for ``identity``, rebuilt when its key fingerprint changed."""
        cached = self._adapters.get(identity)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        adapter = make()
        self._adapters[identity] = (fingerprint, adapter)
        if cached is not None:
            await cached[1].aclose()
        return adapter

    async def _provider(self, served: str, route: ModelRoute, provider: ProviderRoute) -> Upstream:
        """The one upstream of a provider route, with its key read from the referenced Secret."""
        provider = with_model(provider, self.environ)
        ref = provider.api_key_secret_ref
        secret = (provider.namespace or route.namespace, ref) if ref is not None else None
        key = await self.secrets.get(*secret) if secret is not None else None
        fingerprint = hashlib.sha256((key or "").encode()).hexdigest()
        identity = f"{provider.name}:{provider.base_url or ''}:{provider.model}"
        adapter = await self._adapter(identity, fingerprint, lambda: self.build(provider, key))
        policy = policy_for(provider.name, self.settings)
        breaker = self.breaker(adapter.upstream)
        return Upstream(served, adapter, breaker, policy, provider.timeout_seconds, secret)

    async def _runtime(self, served: str, url: str) -> Upstream:
        """The upstream of one runtime endpoint, spoken to through the OpenAI-compatible adapter."""
        base_url = url.rstrip("/") + "/v1"
        timeout = self.settings.runtime_timeout_seconds

        def make() -> Adapter:
            return OpenAIAdapter(
                provider=RUNTIME,
                model=served,
                base_url=base_url,
                api_key=None,
                timeout_seconds=timeout,
                ca_file=self.settings.runtime_ca_file,
            )

        adapter = await self._adapter(f"{RUNTIME}:{base_url}:{served}", "", make)
        policy = self.settings.default_backoff
        return Upstream(served, adapter, self.breaker(adapter.upstream), policy, timeout)

    async def upstreams(self, served: str, route: ModelRoute) -> list[Upstream]:
        """The upstreams behind ``served``: its provider, or its runtime endpoints in rotated order."""
        if route.provider is not None:
            return [await self._provider(served, route, route.provider)]
        found = [await self._runtime(served, endpoint.url) for endpoint in route.endpoints]
        if not found:
            return []
        start = next(self._turn) % len(found)
        return found[start:] + found[:start]

    async def aclose(self) -> None:
        """Close every adapter's connections."""
        for _, adapter in self._adapters.values():
            await adapter.aclose()
        self._adapters.clear()
