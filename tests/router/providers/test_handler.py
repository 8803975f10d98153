"""The chain over HTTP, with the official OpenAI SDK as the client: served-by header, model field, errors."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import pytest
from fake_common import Fault, drain

HELLO = [{"role": "user", "content": "hello"}]
RATE_LIMIT = Fault(429, {"error": {"message": "slow down", "type": "requests"}}, {"retry-after": "30"})


def client(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="router-key", base_url=url + "/v1", max_retries=0)


async def test_fallback_answer_names_the_served_model(served: Any) -> None:
    a, b, _, url = served
    a.faults.append(RATE_LIMIT)
    b.faults.append(Fault(hang_seconds=5))
    raw = await client(url).chat.completions.with_raw_response.create(model="primary", messages=HELLO)
    assert raw.headers["x-inferflux-served-by"] == "local"
    completion = raw.parse()
    assert completion.model == "local"
    assert completion.choices[0].message.content == "echo: hello"


async def test_stream_headers_name_the_served_model(served: Any) -> None:
    a, _, _, url = served
    a.faults.append(RATE_LIMIT)
    raw = await client(url).chat.completions.with_raw_response.create(
        model="primary", messages=HELLO, stream=True
    )
    assert raw.headers["x-inferflux-served-by"] == "second"
    assert raw.headers["content-type"] == "text/event-stream"
    chunks = [chunk async for chunk in raw.parse()]
    assert {chunk.model for chunk in chunks} == {"second"}
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_a_bad_request_reaches_the_client_in_openai_shape(served: Any) -> None:
    a, b, _, url = served
    a.faults.append(Fault(400, {"error": {"message": "bad", "type": "invalid_request_error", "code": None}}))
    with pytest.raises(openai.BadRequestError) as raised:
        await client(url).chat.completions.create(model="primary", messages=HELLO)
    assert raised.value.code == "bad_request"
    assert raised.value.type == "invalid_request_error"
    assert b.requests == []


async def test_rate_limit_keeps_retry_after_for_the_client(served: Any) -> None:
    _, b, _, url = served
    b.faults.extend([Fault(429, {"error": {"message": "slow", "type": "tokens"}}, {"retry-after": "30"})])
    with pytest.raises(openai.RateLimitError) as raised:
        await client(url).chat.completions.create(model="second", messages=HELLO)
    assert raised.value.code == "rate_limited"
    assert raised.value.response.headers["retry-after"] == "30"


async def test_failure_after_the_first_chunk_ends_the_stream_with_an_error(served: Any) -> None:
    a, b, runtime, url = served
    a.faults.append(Fault(break_stream_after=2))
    stream = await client(url).chat.completions.create(model="primary", messages=HELLO, stream=True)
    received: list[Any] = []
    with pytest.raises(openai.APIError) as raised:
        await drain(stream, received)
    assert len(received) == 2
    assert raised.value.code == "upstream_error"
    assert (len(b.requests), len(runtime.requests)) == (0, 0)


async def test_embeddings_and_malformed_requests(served: Any) -> None:
    _, _, _, url = served
    raw = await client(url).embeddings.with_raw_response.create(
        model="local", input="abc", encoding_format="float"
    )
    assert raw.headers["x-inferflux-served-by"] == "local"
    assert raw.parse().data[0].embedding[0] == 3.0
    with pytest.raises(openai.NotFoundError) as missing:
        await client(url).chat.completions.create(model="nope", messages=HELLO)
    assert missing.value.code == "not_found"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/chat/completions", data=b"{") as response,
    ):
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "bad_request"
