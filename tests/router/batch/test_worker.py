"""Workers on a real Redis and the real router with mock backends: scale, retries, dead letters."""

from __future__ import annotations

import collections
import io
from typing import Any

import openai
import orjson

from inferflux.router.batch.worker import WorkerSettings, backoff, retryable


def chat_line(custom_id: str, model: str = "m") -> bytes:
    body = {"model": model, "messages": [{"role": "user", "content": custom_id}], "max_tokens": 1}
    return orjson.dumps(
        {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
    )


def test_what_is_retried_and_how_long_it_waits() -> None:
    assert retryable(503, {})
    assert retryable(429, {"error": {"code": "rate_limited"}})
    assert retryable(0, "")
    assert not retryable(429, {"error": {"code": "insufficient_quota"}})  # a budget refusal stays one
    assert not retryable(400, {})
    assert not retryable(403, {})
    settings = WorkerSettings(backoff_seconds=2, backoff_cap_seconds=5)
    assert [backoff(settings, attempt) for attempt in (1, 2, 3)] == [2, 4, 5]


async def test_a_thousand_tasks_each_run_and_written_once(batch_router, mocks, route, wait_for) -> None:
    backend = await mocks()
    harness = await batch_router({"m": route([backend.url])}, batch_workers=32)
    sdk = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="unused", max_retries=0)
    content = b"\n".join(chat_line(f"c{index}") for index in range(5))
    uploaded = await sdk.files.create(file=("in.jsonl", io.BytesIO(content)), purpose="batch")
    batch_ids = []
    for _ in range(200):
        batch = await sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        batch_ids.append(batch.id)

    async def all_done() -> bool:
        for batch_id in batch_ids:
            record = await harness.batch.queue.record(batch_id)
            if record["status"] != "completed":
                return False
        return True

    await wait_for(all_done, within=120, step=0.2)
    written = collections.Counter()
    for batch_id in batch_ids:
        batch = await sdk.batches.retrieve(batch_id)
        assert batch.request_counts is not None
        assert (batch.request_counts.completed, batch.request_counts.failed) == (5, 0)
        assert batch.output_file_id is not None
        output = await sdk.files.content(batch.output_file_id)
        for line in output.content.splitlines():
            written[(batch_id, orjson.loads(line)["custom_id"])] += 1
    expected = {(batch_id, f"c{index}") for batch_id in batch_ids for index in range(5)}
    assert set(written) == expected
    assert set(written.values()) == {1}
    seen = collections.Counter(backend.state.request_ids)
    assert set(seen) == {f"{batch_id}:{custom_id}" for batch_id, custom_id in expected}
    assert set(seen.values()) == {1}  # the backend saw each task once
    await sdk.close()


async def test_an_always_failing_task_is_tried_three_times_then_dead_lettered(
    batch_router, mocks, route, wait_for
) -> None:
    good = await mocks()
    broken = await mocks(fail_status=503)
    harness = await batch_router(
        {"m": route([good.url]), "broken": route([broken.url], name="broken")}, retries=0
    )
    sdk = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="unused", max_retries=0)
    content = b"\n".join([chat_line("ok-1"), chat_line("doomed", model="broken"), chat_line("ok-2")])
    uploaded = await sdk.files.create(file=("in.jsonl", io.BytesIO(content)), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )

    async def finished() -> Any:
        found = await sdk.batches.retrieve(batch.id)
        return found if found.status == "completed" else None

    batch = await wait_for(finished)
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (2, 1)
    assert broken.state.requests == 3  # tried exactly three times
    assert broken.state.request_ids == [f"{batch.id}:doomed"] * 3
    assert batch.error_file_id is not None
    errors = [
        orjson.loads(line) for line in (await sdk.files.content(batch.error_file_id)).content.splitlines()
    ]
    assert [line["custom_id"] for line in errors] == ["doomed"]
    assert errors[0]["error"]["code"] == "max_attempts_exceeded"
    assert errors[0]["response"]["status_code"] == 503  # the last error
    output = (await sdk.files.content(batch.output_file_id or "")).content
    assert [orjson.loads(line)["custom_id"] for line in output.splitlines()] == ["ok-1", "ok-2"]
    [dead] = await harness.batch.queue.dead_letters()
    assert (dead["batch_id"], dead["custom_id"], dead["attempts"], dead["last_status"]) == (
        batch.id,
        "doomed",
        3,
        503,
    )
    await sdk.close()


async def test_a_refused_request_goes_to_the_error_file_at_once(batch_router, mocks, route, wait_for) -> None:
    refusing = await mocks(fail_status=400)
    harness = await batch_router({"m": route([refusing.url])})
    sdk = openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key="unused", max_retries=0)
    uploaded = await sdk.files.create(file=("in.jsonl", io.BytesIO(chat_line("bad"))), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )

    async def finished() -> Any:
        found = await sdk.batches.retrieve(batch.id)
        return found if found.status == "completed" else None

    batch = await wait_for(finished)
    assert refusing.state.requests == 1
    assert batch.output_file_id is None
    [line] = (await sdk.files.content(batch.error_file_id or "")).content.splitlines()
    assert orjson.loads(line)["response"]["status_code"] == 400
    await sdk.close()
