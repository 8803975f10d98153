"""The asyncio client: ``AsyncInferFlux(base_url, api_key)``, the same contract as `InferFlux`.

``async for chunk in client.stream(...)`` yields every chunk exactly once while the client
reconnects and resumes on its own behind it (see `inferflux.client.stream`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from inferflux.client import http
from inferflux.client.errors import APIConnectionError
from inferflux.client.events import Chunk, Inference, SSEDecoder
from inferflux.client.stream import STREAM_PATH, Reconnect, StreamCursor, StreamHandle


class AsyncInferenceStream(StreamHandle):
    """An async iterator of the chunks of one stream, across as many connections as it takes."""

    def __init__(self, client: AsyncInferFlux, first: dict[str, Any], cursor: StreamCursor) -> None:
        super().__init__(first, cursor, http.request_id())
        self._client = client
        self._chunks = self._run()

    async def text(self) -> str:
        """Read the rest of the stream and return its text."""
        return "".join([chunk.text async for chunk in self])

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._chunks

    async def __aenter__(self) -> AsyncInferenceStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop reading (the router's producer carries on; the token still resumes it)."""
        await self._chunks.aclose()

    async def _run(self) -> AsyncGenerator[Chunk]:
        client, cursor, policy = self._client, self.cursor, self._client.reconnect
        retries = 0
        while not cursor.finished:
            resuming = cursor.resume_token is not None
            try:
                async with client.http.stream(
                    "POST",
                    STREAM_PATH,
                    json=cursor.request(self.first),
                    headers={"x-request-id": self.request_id},
                    timeout=http.timeout(client.connect_timeout, policy.stall_seconds),
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        error = http.api_error(response, resuming=resuming)
                        await client.sleep(cursor.refused(error, policy, retries))
                        retries += 1
                        continue
                    decoder = SSEDecoder()
                    async for raw in response.aiter_bytes():
                        for event, data in decoder.feed(raw):
                            chunk = cursor.accept(event, data)
                            if chunk is not None:
                                yield chunk
                            if cursor.finished:
                                return
                cause: BaseException | None = None  # ended without done: dropped all the same
            except httpx.TransportError as error:
                cause = error
            await client.sleep(cursor.dropped(policy, cause))


class AsyncInferFlux:
    """An asyncio client for the router's ``/api/v1/inference`` contract (see `InferFlux`)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        reconnect: Reconnect | None = None,
        timeout: float = 600.0,
        connect_timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.reconnect = reconnect or Reconnect()
        self.connect_timeout = connect_timeout
        self.sleep = sleep
        self.http = httpx.AsyncClient(
            base_url=base_url,
            headers=http.headers(api_key, headers),
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
        )

    async def infer(
        self,
        model: str,
        messages: Sequence[Mapping[str, str]] | None = None,
        *,
        prompt: str | None = None,
        **options: Any,
    ) -> Inference:
        """The whole answer at once; a refusal with ``retry-after`` is retried per the policy."""
        body = http.inference_body(model, messages, prompt, options)
        headers = {"x-request-id": http.request_id()}
        retries = 0
        while True:
            try:
                response = await self.http.post(http.INFERENCE_PATH, json=body, headers=headers)
            except httpx.TransportError as broken:
                raise APIConnectionError(f"no answer from the router: {type(broken).__name__}") from broken
            if response.status_code < 400:
                return Inference.of(response.json())
            refusal = http.api_error(response)
            delay = self.reconnect.retry_delay(refusal, retries)
            if delay is None:
                raise refusal
            await self.sleep(delay)
            retries += 1

    def stream(
        self,
        model: str,
        messages: Sequence[Mapping[str, str]] | None = None,
        *,
        prompt: str | None = None,
        **options: Any,
    ) -> AsyncInferenceStream:
        """A new stream; nothing is sent until it is iterated."""
        body = http.inference_body(model, messages, prompt, options)
        return AsyncInferenceStream(self, body, StreamCursor())

    def resume(self, resume_token: str) -> AsyncInferenceStream:
        """Continue a stream from a token saved earlier (by this process or another)."""
        return AsyncInferenceStream(self, {}, StreamCursor(resume_token))

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()

    async def __aenter__(self) -> AsyncInferFlux:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()
