"""The official openai SDK through the router (sync, async, streaming with include_usage, errors).

The backend here is the fake runtime (mock_openai.py); test_runtime_acceptance.py runs the same
client against the real runtime serving the real small model.
"""

from __future__ import annotations

import asyncio

import openai
import pytest

MESSAGES = [{"role": "user", "content": "hello"}]


async def test_sync_and_async_clients(mocks, make_router, route) -> None:
    backend = await mocks()
    harness = await make_router({"m": route([backend.url]), "e": route([backend.url])})

    def sync_calls() -> tuple[str, list[str]]:
        client = openai.OpenAI(base_url=harness.url + "/v1", api_key="unused", max_retries=0)
        answer = client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=3)
        models = [model.id for model in client.models.list()]
        return answer.choices[0].message.content or "", models

    content, models = await asyncio.to_thread(sync_calls)
    assert content == "t0 t1 t2 "
    assert models == ["e", "m"]
    client = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="unused", max_retries=0)
    completion = await client.completions.create(model="m", prompt="x", max_tokens=2)
    assert completion.choices[0].text == "t0 t1 "
    embedding = await client.embeddings.create(model="e", input="x")
    assert embedding.data[0].embedding == [0.1, 0.2]
    await client.close()


async def test_streaming_with_include_usage(mocks, make_router, route) -> None:
    backend = await mocks()
    harness = await make_router({"m": route([backend.url])})
    client = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="unused", max_retries=0)
    stream = await client.chat.completions.create(
        model="m", messages=MESSAGES, max_tokens=12, stream=True, stream_options={"include_usage": True}
    )
    pieces, usage = [], None
    async for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
        if chunk.usage:
            usage = chunk.usage
    assert "".join(pieces) == "".join(f"t{i} " for i in range(12))
    assert usage is not None
    assert usage.completion_tokens == 12
    await client.close()


async def test_errors_surface_as_sdk_exceptions(mocks, make_router, route) -> None:
    backend = await mocks()
    harness = await make_router({"m": route([backend.url]), "down": route([])})
    client = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError) as missing:
        await client.chat.completions.create(model="nope", messages=MESSAGES)
    assert missing.value.code == "not_found"
    with pytest.raises(openai.InternalServerError) as down:
        await client.chat.completions.create(model="down", messages=MESSAGES)
    assert down.value.status_code == 503
    await client.close()
