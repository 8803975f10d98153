"""Acceptance: the official openai SDK through the router to the real runtime on the real small model.

Starts `python -m inferflux.runtime` (llama.cpp on CPU) on the bundled Gemma 3 270M GGUF, routes a
model name to it through a file routing table, and talks to the router with the SDK: sync, async,
streaming with include_usage, and the seeds' resumable stream cut off and resumed.
"""

from __future__ import annotations

import asyncio

import openai
import orjson
import pytest

pytestmark = pytest.mark.slow

MESSAGES = [{"role": "user", "content": "Name three colours."}]


async def test_openai_sdk_through_the_router(runtime_url, make_router, route) -> None:
    harness = await make_router({"gemma": route([runtime_url])})

    def sync_chat() -> openai.types.chat.ChatCompletion:
        client = openai.OpenAI(base_url=harness.url + "/v1", api_key="unused", max_retries=0)
        return client.chat.completions.create(model="gemma", messages=MESSAGES, max_tokens=8, temperature=0)

    answer = await asyncio.to_thread(sync_chat)
    assert answer.choices[0].message.content
    assert answer.usage is not None
    assert answer.usage.completion_tokens > 0

    client = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="unused", max_retries=0)
    models = [model.id async for model in client.models.list()]
    assert models == ["gemma"]
    stream = await client.chat.completions.create(
        model="gemma",
        messages=MESSAGES,
        max_tokens=8,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage = [], None
    async for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
        usage = chunk.usage or usage
    assert "".join(pieces) == answer.choices[0].message.content  # greedy: same text streamed or not
    assert usage is not None
    assert usage.completion_tokens == answer.usage.completion_tokens
    completion = await client.completions.create(
        model="gemma", prompt="The sky is", max_tokens=4, temperature=0
    )
    assert completion.choices[0].text
    await client.close()


async def test_resumable_stream_on_the_real_model(runtime_url, make_router, route) -> None:
    harness = await make_router({"gemma": route([runtime_url])})
    request = {"model": "gemma", "messages": MESSAGES, "max_tokens": 24, "temperature": 0}
    async with harness.post("/api/v1/inference", request) as response:
        whole = (await response.json())["output"]
    response = await harness.session.post(harness.url + "/api/v1/inference:stream", json=request)
    texts, token, buffer = [], "", b""
    async for chunk in response.content.iter_any():
        buffer += chunk
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            if b"event: data" in block:
                payload = orjson.loads(block.split(b"data: ", 1)[1])
                texts.append(payload["text"])
                token = payload["resume_token"]
        if len(texts) >= 3:
            break
    response.close()
    async with harness.post("/api/v1/inference:stream", {"resume_token": token}) as resumed:
        raw = await resumed.read()
    for block in raw.split(b"\n\n"):
        if b"event: data" in block:
            texts.append(orjson.loads(block.split(b"data: ", 1)[1])["text"])
    assert b"event: done" in raw
    assert "".join(texts) == whole


async def test_the_runtimes_refusals_reach_clients_unchanged(runtime_url, make_router, route) -> None:
    harness = await make_router({"gemma": route([runtime_url])})
    client = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="unused", max_retries=0)
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    question = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]}]
    with pytest.raises(openai.BadRequestError) as not_multimodal:
        await client.chat.completions.create(model="gemma", messages=question, max_tokens=4)
    assert not_multimodal.value.code == "model_not_multimodal"
    with pytest.raises(openai.BadRequestError) as several:
        await client.chat.completions.create(model="gemma", messages=MESSAGES, max_tokens=4, n=2)
    assert several.value.param == "n"
    assert "n must be 1" in several.value.message
    await client.close()
