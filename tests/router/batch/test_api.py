"""The Batch API through the official openai SDK, against the router with a mock backend and real Redis."""

from __future__ import annotations

import io
from typing import Any

import openai
import orjson
import pytest

from inferflux.router.errors import UpstreamError


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def chat_line(custom_id: str, model: str = "m", **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": model,
            "messages": [{"role": "user", "content": custom_id}],
            "max_tokens": 2,
            **body,
        },
    }


def client(harness: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="unused", max_retries=0)


async def finished(sdk: openai.AsyncOpenAI, batch_id: str, wait_for: Any) -> Any:
    async def done() -> Any:
        batch = await sdk.batches.retrieve(batch_id)
        return batch if batch.status in ("completed", "failed", "cancelled", "expired") else None

    return await wait_for(done)


async def test_the_sdk_runs_a_batch_to_completion(batch_router, mocks, route, wait_for) -> None:
    backend = await mocks()
    harness = await batch_router({"m": route([backend.url])})
    sdk = client(harness)
    lines = [chat_line(f"req-{index}") for index in range(3)]
    uploaded = await sdk.files.create(file=("in.jsonl", io.BytesIO(jsonl(lines))), purpose="batch")
    assert uploaded.purpose == "batch"
    assert uploaded.bytes == len(jsonl(lines))
    assert (await sdk.files.retrieve(uploaded.id)).filename == "in.jsonl"
    batch = await sdk.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"k": "v"},
    )
    assert batch.status == "in_progress"
    assert batch.request_counts is not None
    assert batch.request_counts.total == 3
    batch = await finished(sdk, batch.id, wait_for)
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (3, 0)
    assert batch.error_file_id is None
    assert batch.metadata == {"k": "v"}
    assert batch.completed_at is not None
    assert batch.output_file_id is not None
    output = await sdk.files.content(batch.output_file_id)
    records = [orjson.loads(line) for line in output.content.splitlines()]
    assert [record["custom_id"] for record in records] == ["req-0", "req-1", "req-2"]
    for record in records:
        assert record["response"]["status_code"] == 200
        assert record["response"]["request_id"] == f"{batch.id}:{record['custom_id']}"
        assert record["response"]["body"]["choices"][0]["message"]["content"]
    assert sorted(backend.state.request_ids) == sorted(f"{batch.id}:req-{index}" for index in range(3))
    # Sent at the lowest priority, as one request each through the request path.
    assert len(backend.state.bodies) == 3
    await sdk.close()


async def test_bad_lines_fail_the_batch_with_their_line_numbers(batch_router, mocks, route) -> None:
    backend = await mocks()
    harness = await batch_router({"m": route([backend.url])})
    sdk = client(harness)
    content = b"\n".join(
        [
            orjson.dumps(chat_line("a")),
            b"{not json",
            orjson.dumps(chat_line("a")),
            orjson.dumps(chat_line("b", model="nope")),
            orjson.dumps({**chat_line("c"), "url": "/v1/embeddings"}),
            orjson.dumps({**chat_line("d"), "body": {"model": "m"}}),
        ]
    )
    uploaded = await sdk.files.create(file=("in.jsonl", io.BytesIO(content)), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "failed"
    assert batch.errors is not None
    found = [(error.line, error.code) for error in batch.errors.data or []]
    assert found == [
        (2, "invalid_json"),
        (3, "duplicate_custom_id"),
        (4, "model_not_found"),
        (5, "invalid_url"),
        (6, "missing_required_parameter"),
    ]
    assert backend.state.requests == 0
    await sdk.close()


async def test_unusable_requests_get_one_readable_error(batch_router, mocks, route) -> None:
    backend = await mocks()
    harness = await batch_router({"m": route([backend.url])}, batch_max_lines=2)
    sdk = client(harness)
    with pytest.raises(openai.BadRequestError, match="purpose"):
        await sdk.files.create(file=("in.jsonl", io.BytesIO(b"x")), purpose="assistants")
    uploaded = await sdk.files.create(
        file=("in.jsonl", io.BytesIO(jsonl([chat_line(str(n)) for n in range(3)]))), purpose="batch"
    )
    with pytest.raises(openai.BadRequestError, match="more than 2 requests"):
        await sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    with pytest.raises(openai.BadRequestError, match="completion_window"):
        await sdk.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/chat/completions",
            completion_window="1h",  # type: ignore[arg-type]
        )
    with pytest.raises(openai.NotFoundError):
        await sdk.batches.create(
            input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h"
        )
    with pytest.raises(openai.NotFoundError):
        await sdk.batches.retrieve("batch_nope")
    async with harness.session.post(harness.url + "/v1/files", data=b"plain") as response:
        assert response.status == 400
        assert "multipart" in (await response.json())["error"]["message"]
    await sdk.close()


async def test_files_are_deleted_and_batches_listed_in_pages(batch_router, mocks, route, wait_for) -> None:
    backend = await mocks()
    harness = await batch_router({"m": route([backend.url])})
    sdk = client(harness)
    uploaded = await sdk.files.create(file=("in.jsonl", io.BytesIO(jsonl([chat_line("x")]))), purpose="batch")
    created = []
    for _ in range(5):
        batch = await sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        created.append(batch.id)
    first = await sdk.batches.list(limit=2)
    assert [batch.id for batch in first.data] == created[::-1][:2]
    assert first.has_more
    every = [batch.id async for batch in sdk.batches.list(limit=2)]  # the SDK follows the cursor
    assert every == created[::-1]
    deleted = await sdk.files.delete(uploaded.id)
    assert deleted.deleted
    with pytest.raises(openai.NotFoundError):
        await sdk.files.retrieve(uploaded.id)
    for batch_id in created:
        await finished(sdk, batch_id, wait_for)
    await sdk.close()


async def test_a_cancelled_batch_stops_and_keeps_what_finished(batch_router, mocks, route, wait_for) -> None:
    backend = await mocks(answer_delay_ms=50)
    harness = await batch_router({"m": route([backend.url])}, batch_workers=1)
    sdk = client(harness)
    lines = [chat_line(f"r{index}") for index in range(40)]
    uploaded = await sdk.files.create(file=("in.jsonl", io.BytesIO(jsonl(lines))), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    await wait_for(lambda: backend.state.requests >= 2, step=0.001)
    cancelled = await sdk.batches.cancel(batch.id)
    assert cancelled.status in ("cancelling", "cancelled")
    seen_at_cancel = backend.state.requests
    batch = await finished(sdk, batch.id, wait_for)
    assert batch.status == "cancelled"
    assert batch.cancelled_at is not None
    assert batch.request_counts is not None
    completed = batch.request_counts.completed
    assert completed < 40
    # At most the one task already running when the cancel landed started afterwards.
    assert backend.state.requests <= seen_at_cancel + 1
    assert completed == backend.state.requests
    if completed:
        assert batch.output_file_id is not None
        output = await sdk.files.content(batch.output_file_id)
        assert len(output.content.splitlines()) == completed
    await sdk.close()


async def test_tenants_see_only_their_own_files_and_batches(batch_router, mocks, route) -> None:
    backend = await mocks()
    harness = await batch_router({"m": route([backend.url])})
    service = harness.batch.service
    meta = await service.upload("team-a", "in.jsonl", "batch", jsonl([chat_line("x")]))
    assert (await service.file("team-a", meta["id"]))["id"] == meta["id"]
    with pytest.raises(UpstreamError) as raised:
        await service.file("team-b", meta["id"])
    assert raised.value.status == 404
    with pytest.raises(UpstreamError):
        await service.content("team-b", meta["id"])
    assert not await service.files.delete("team-b", meta["id"])
    assert await service.files.delete("team-a", meta["id"])
