"""The OpenAI-wire adapter, through the official ``openai`` SDK (async client).

One class serves every upstream that speaks the OpenAI API: OpenAI itself, Groq (its own base URL,
aggressive rate-limit backoff), any OpenAI-compatible base URL (vLLM, other gateways) and the
project's own runtime pods (``<endpoint>/v1``). The request body passes through untouched except
for ``model``, which becomes the upstream's model id; fields the SDK does not know travel in
``extra_body`` so nothing a client sent is dropped.

The SDK's own retries are off (``max_retries=0``): retries, backoff and fallbacks belong to the
chain, which sees every attempt.
"""

from __future__ import annotations

import inspect
import ssl
from collections.abc import AsyncIterator, Mapping
from functools import cache
from typing import Any

from inferflux.router.providers.base import Body
from inferflux.router.providers.classify import classify
from inferflux.router.telemetry.tracing import outgoing_headers

# Base URLs of the hosted providers; a route's baseURL overrides them.
OPENAI_BASE_URL = "https://api.openai.com/v1"
GROQ_BASE_URL = "https://api.groq.com/openai/v1"
# Runtime pods need no key, but the SDK refuses an empty one.
NO_KEY = "not-needed"


@cache
def _known_params(method: str) -> frozenset[str]:
    """Keyword arguments the SDK's ``create`` accepts for ``method`` (chat or embeddings)."""
    import openai  # on first use, like the adapter (classify.py says why)

    client = openai.AsyncOpenAI(api_key=NO_KEY, base_url="http://127.0.0.1:9/v1")
    create = client.chat.completions.create if method == "chat" else client.embeddings.create
    return frozenset(inspect.signature(create).parameters) - {
        "extra_body",
        "extra_headers",
        "extra_query",
        "timeout",
    }


def split_params(body: Mapping[str, Any], method: str) -> dict[str, Any]:
    """SDK keyword arguments for ``body``: known fields as themselves, the rest in ``extra_body``."""
    known = _known_params(method)
    params = {key: value for key, value in body.items() if key in known}
    extra = {key: value for key, value in body.items() if key not in known}
    if extra:
        params["extra_body"] = extra
    return params


def as_dict(model: Any) -> Body:
    """An SDK response object back as the JSON the upstream sent (unset fields stay absent)."""
    dumped: Body = model.model_dump(mode="json", exclude_unset=True)
    return dumped


class OpenAIAdapter:
    """An upstream that speaks the OpenAI API at ``base_url``."""

    def __init__(
        self,
        *,
        provider: str,
        model: str,
        base_url: str,
        api_key: str | None,
        timeout_seconds: float,
        ca_file: str | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.upstream = f"{provider}:{base_url.rstrip('/')}:{model}"
        import openai  # here, not at the top: only a router with a provider route pays for it

        # A private CA (INFERFLUX_UPSTREAM_CA_FILE) for https runtimes; else the system's CAs.
        http_client = (
            openai.DefaultAsyncHttpxClient(verify=ssl.create_default_context(cafile=ca_file))
            if ca_file
            else None
        )
        self._client = openai.AsyncOpenAI(
            api_key=api_key or NO_KEY,
            base_url=base_url,
            timeout=timeout_seconds,
            max_retries=0,
            http_client=http_client,
        )

    def _body(self, body: Mapping[str, Any]) -> Body:
        """``body`` aimed at this upstream's model."""
        return {**body, "model": self.model}

    async def chat(self, body: Body) -> Body:
        """A complete chat completion."""
        params = split_params({**self._body(body), "stream": False}, "chat")
        try:
            completion = await self._client.chat.completions.create(
                **params, extra_headers=outgoing_headers()
            )
        except Exception as error:
            raise classify(error, self.provider) from None
        return as_dict(completion)

    async def chat_stream(self, body: Body) -> AsyncIterator[Body]:
        """Chat completion chunks as the upstream sends them."""
        params = split_params({**self._body(body), "stream": True}, "chat")
        try:
            stream = await self._client.chat.completions.create(**params, extra_headers=outgoing_headers())
            async with stream:
                async for chunk in stream:
                    yield as_dict(chunk)
        except Exception as error:
            raise classify(error, self.provider) from None

    async def embeddings(self, body: Body) -> Body:
        """An embeddings response; floats unless the client asked for base64."""
        params = split_params({"encoding_format": "float", **self._body(body)}, "embeddings")
        try:
            response = await self._client.embeddings.create(**params, extra_headers=outgoing_headers())
        except Exception as error:
            raise classify(error, self.provider) from None
        return as_dict(response)

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.close()
