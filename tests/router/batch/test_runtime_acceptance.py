"""Acceptance: the official openai SDK runs a small batch on the real runtime serving the real model."""

from __future__ import annotations

import io

import openai
import orjson
import pytest

pytestmark = pytest.mark.slow


async def test_a_batch_on_the_real_model(runtime_url, batch_router, route, wait_for) -> None:
    harness = await batch_router({"gemma": route([runtime_url])})
    sdk = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="unused", max_retries=0)
    prompts = {"colours": "Name three colours.", "animals": "Name two animals."}
    lines = [
        {
            "custom_id": custom_id,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "gemma",
                "messages": [{"role": "user", "content": text}],
                "max_tokens": 8,
                "temperature": 0,
            },
        }
        for custom_id, text in prompts.items()
    ]
    content = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    uploaded = await sdk.files.create(file=("in.jsonl", io.BytesIO(content)), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )

    async def completed() -> openai.types.Batch | None:
        found = await sdk.batches.retrieve(batch.id)
        return found if found.status == "completed" else None

    batch = await wait_for(completed, within=180, step=0.2)
    assert batch.request_counts is not None
    assert batch.request_counts.completed == 2
    assert batch.output_file_id is not None
    output = await sdk.files.content(batch.output_file_id)
    records = {orjson.loads(line)["custom_id"]: orjson.loads(line) for line in output.content.splitlines()}
    assert set(records) == set(prompts)
    for record in records.values():
        body = record["response"]["body"]
        assert record["response"]["status_code"] == 200
        assert body["choices"][0]["message"]["content"]
        assert body["usage"]["completion_tokens"] > 0
    await sdk.close()
