"""The provider adapter interface: one upstream, OpenAI-shaped requests in, OpenAI-shaped answers out.

Every adapter takes an OpenAI chat-completions (or embeddings) request body as a dict, calls its
upstream through that provider's official SDK, and returns OpenAI-shaped dicts; streamed answers
are async iterators of ``chat.completion.chunk`` dicts. Failures are raised as `UpstreamError` with
a normalised code (see `classify.py`), so the chain and the router never see an SDK exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from inferflux.router.errors import ErrorCode, UpstreamError

Body = dict[str, Any]


class Adapter(Protocol):
    """One upstream (a provider account and model, or one runtime endpoint)."""

    provider: str
    """The provider name for metrics: openai, anthropic, groq, openai-compatible or runtime."""
    upstream: str
    """A stable, secret-free identity of the upstream, the key of its circuit breaker."""

    async def chat(self, body: Body) -> Body:
        """A complete chat completion."""
        ...

    def chat_stream(self, body: Body) -> AsyncIterator[Body]:
        """Chat completion chunks as they arrive."""
        ...

    async def embeddings(self, body: Body) -> Body:
        """An embeddings response."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def unsupported(what: str, provider: str) -> UpstreamError:
    """The error for a capability ``provider`` does not offer (e.g. embeddings on Anthropic)."""
    return UpstreamError(ErrorCode.BAD_REQUEST, f"{what} is not supported by provider {provider}")
