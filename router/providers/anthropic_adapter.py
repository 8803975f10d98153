"""The Anthropic adapter, through the official ``anthropic`` SDK (async client).

OpenAI-shaped requests are translated to the Messages API by `anthropic_map`, sent with the SDK
(which adds the ``anthropic-version`` header and the key), and the Message or its event stream is
translated back into OpenAI shapes. Anthropic has no embeddings endpoint, so embeddings are a
clear ``bad_request`` rather than a surprise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from inferflux.router.providers.anthropic_map import ChunkMapper, completion, messages_params
from inferflux.router.providers.base import Body, unsupported
from inferflux.router.providers.classify import classify
from inferflux.router.providers.openai_adapter import as_dict
from inferflux.router.telemetry.tracing import outgoing_headers

ANTHROPIC_BASE_URL = "https://api.anthropic.com"


class AnthropicAdapter:
    """An Anthropic model behind one API key."""

    provider = "anthropic"

    def __init__(
        self, *, model: str, base_url: str | None, api_key: str | None, timeout_seconds: float
    ) -> None:
        self.model = model
        base = (base_url or ANTHROPIC_BASE_URL).rstrip("/")
        self.upstream = f"anthropic:{base}:{model}"
        import anthropic  # here, not at the top: only a router with an Anthropic route pays for it

        self._client = anthropic.AsyncAnthropic(
            api_key=api_key or "", base_url=base, timeout=timeout_seconds, max_retries=0
        )

    def _params(self, body: Body, stream: bool) -> dict[str, Any]:
        return {**messages_params(body), "model": self.model, "stream": stream}

    async def chat(self, body: Body) -> Body:
        """A complete chat completion from one Message."""
        params = self._params(body, stream=False)
        try:
            message = await self._client.messages.create(**params, extra_headers=outgoing_headers())
        except Exception as error:
            raise classify(error, self.provider) from None
        return completion(as_dict(message), self.model)

    async def chat_stream(self, body: Body) -> AsyncIterator[Body]:
        """OpenAI chunks translated from the Messages event stream."""
        params = self._params(body, stream=True)
        options = body.get("stream_options") or {}
        mapper = ChunkMapper(self.model, include_usage=bool(options.get("include_usage")))
        try:
            stream = await self._client.messages.create(**params, extra_headers=outgoing_headers())
            async with stream:
                async for event in stream:
                    for chunk in mapper.chunks(as_dict(event)):
                        yield chunk
        except Exception as error:
            raise classify(error, self.provider) from None

    async def embeddings(self, body: Body) -> Body:
        """Anthropic has no embeddings API."""
        raise unsupported("embeddings", self.provider)

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.close()
