"""The blocking client: ``InferFlux(base_url, api_key).infer(...)`` and ``.stream(...)``.

A stream is an iterator of `Chunk`; behind it the client reconnects on its own whenever the
connection drops or stalls past the heartbeat interval, and resumes from the youngest resume token,
so the caller sees every chunk exactly once (see `inferflux.client.stream`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from inferflux.client import http
from inferflux.client.errors import APIConnectionError
from inferflux.client.events import Chunk, Inference, SSEDecoder
from inferflux.client.stream import STREAM_PATH, Reconnect, StreamCursor, StreamHandle


class InferenceStream(StreamHandle):
    """An iterator of the chunks of one stream, across as many connections as it takes."""

    def __init__(self, client: InferFlux, first: dict[str, Any], cursor: StreamCursor) -> None:
        super().__init__(first, cursor, http.request_id())
        self._client = client
        self._chunks = self._run()

    def text(self) -> str:
        """Read the rest of the stream and return its text."""
        return "".join(chunk.text for chunk in self)

    def __iter__(self) -> Iterator[Chunk]:
        return self._chunks

    def __enter__(self) -> InferenceStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading (the router's producer carries on; the token still resumes it)."""
        self._chunks.close()

    def _run(self) -> Generator[Chunk]:
        client, cursor, policy = self._client, self.cursor, self._client.reconnect
        retries = 0
        while not cursor.finished:
            resuming = cursor.resume_token is not None
            try:
                with client.http.stream(
                    "POST",
                    STREAM_PATH,
                    json=cursor.request(self.first),
                    headers={"x-request-id": self.request_id},
                    timeout=http.timeout(client.connect_timeout, policy.stall_seconds),
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        client.sleep(
                            cursor.refused(http.api_error(response, resuming=resuming), policy, retries)
                        )
                        retries += 1
                        continue
                    decoder = SSEDecoder()
                    for raw in response.iter_bytes():
                        for event, data in decoder.feed(raw):
                            chunk = cursor.accept(event, data)
                            if chunk is not None:
                                yield chunk
                            if cursor.finished:
                                return
                cause: BaseException | None = None  # ended without done: dropped all the same
            except httpx.TransportError as error:
                cause = error
            client.sleep(cursor.dropped(policy, cause))


class InferFlux:
    """A blocking client for the router's ``/api/v1/inference`` contract.

    ``api_key`` is sent as a bearer credential. ``reconnect`` tunes reconnects, stall detection and
    ``retry-after`` handling; ``sleep`` is how the client waits (injectable for tests and schedulers).
    For the OpenAI-compatible ``/v1`` routes use the official ``openai`` SDK with ``base_url``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        reconnect: Reconnect | None = None,
        timeout: float = 600.0,
        connect_timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.reconnect = reconnect or Reconnect()
        self.connect_timeout = connect_timeout
        self.sleep = sleep
        self.http = httpx.Client(
            base_url=base_url,
            headers=http.headers(api_key, headers),
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
        )

    def infer(
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
                response = self.http.post(http.INFERENCE_PATH, json=body, headers=headers)
            except httpx.TransportError as broken:
                raise APIConnectionError(f"no answer from the router: {type(broken).__name__}") from broken
            if response.status_code < 400:
                return Inference.of(response.json())
            refusal = http.api_error(response)
            delay = self.reconnect.retry_delay(refusal, retries)
            if delay is None:
                raise refusal
            self.sleep(delay)
            retries += 1

    def stream(
        self,
        model: str,
        messages: Sequence[Mapping[str, str]] | None = None,
        *,
        prompt: str | None = None,
        **options: Any,
    ) -> InferenceStream:
        """A new stream; nothing is sent until it is iterated."""
        return InferenceStream(self, http.inference_body(model, messages, prompt, options), StreamCursor())

    def resume(self, resume_token: str) -> InferenceStream:
        """Continue a stream from a token saved earlier (by this process or another)."""
        return InferenceStream(self, {}, StreamCursor(resume_token))

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def __enter__(self) -> InferFlux:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
