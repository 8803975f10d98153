"""With authentication on: the batch scope is required, and a tenant sees only its own files and batches."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from inferflux.crds.policy import PolicySnapshot, TenantPolicy
from inferflux.crds.tenant import Scope
from inferflux.router.batch.executor import RouterExecutor
from inferflux.router.batch.worker import Worker, WorkerSettings
from inferflux.router.identity import api_keys
from inferflux.router.policy.effective import PolicyHolder

BATCH = [Scope.INFERENCE, Scope.BATCH]
FAST_WORKER = WorkerSettings(housekeeping_seconds=0.05, block_ms=100)
LINE = orjson.dumps(
    {
        "custom_id": "one",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
    }
)


async def secured(
    batch_router: Any, mocks: Any, route: Any, tmp_path: Path, workers: bool = True
) -> tuple[Any, Any, dict[str, str]]:
    secret = tmp_path / "auth-secret"
    secret.write_bytes(b"s" * 48)
    holder = PolicyHolder()
    holder.set_snapshot(
        PolicySnapshot(
            tenants={
                "alpha": TenantPolicy(name="alpha", scopes=BATCH, models=["m"]),
                "beta": TenantPolicy(name="beta", scopes=BATCH, models=["m"]),
                "plain": TenantPolicy(name="plain", scopes=[Scope.INFERENCE], models=["m"]),
            }
        )
    )
    hasher = api_keys.load_hasher(str(secret))
    keys = {}
    for tenant in ("alpha", "beta", "plain"):
        key, issued = api_keys.generate(hasher, tenant)
        holder.put_key(issued.id, issued)
        keys[tenant] = key
    backend = await mocks()
    harness = await batch_router(
        {"m": route([backend.url])}, workers, policy=holder, auth=True, auth_secret_file=str(secret)
    )
    return harness, backend, keys


def sdk(harness: Any, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=harness.url + "/v1", api_key=key, max_retries=0)


async def test_tenants_are_kept_apart_and_need_the_batch_scope(
    batch_router, mocks, route, tmp_path, wait_for
) -> None:
    harness, backend, keys = await secured(batch_router, mocks, route, tmp_path)
    alpha, beta, plain = sdk(harness, keys["alpha"]), sdk(harness, keys["beta"]), sdk(harness, keys["plain"])
    with pytest.raises(openai.AuthenticationError):
        await sdk(harness, "sk-wrong").batches.list()
    with pytest.raises(openai.PermissionDeniedError):
        await plain.files.create(file=("in.jsonl", io.BytesIO(LINE)), purpose="batch")
    with pytest.raises(openai.PermissionDeniedError):
        await plain.batches.retrieve("batch_x")
    uploaded = await alpha.files.create(file=("in.jsonl", io.BytesIO(LINE)), purpose="batch")
    with pytest.raises(openai.NotFoundError):
        await beta.files.retrieve(uploaded.id)
    with pytest.raises(openai.NotFoundError):
        await beta.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    batch = await alpha.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    with pytest.raises(openai.NotFoundError):
        await beta.batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        await beta.batches.cancel(batch.id)
    assert [item.id async for item in beta.batches.list()] == []

    async def completed() -> Any:
        found = await alpha.batches.retrieve(batch.id)
        return found if found.status == "completed" else None

    batch = await wait_for(completed)
    assert batch.request_counts is not None
    assert batch.request_counts.completed == 1
    assert backend.state.request_ids == [f"{batch.id}:one"]
    with pytest.raises(openai.NotFoundError):
        await beta.files.content(batch.output_file_id or "")
    for client in (alpha, beta, plain):
        await client.close()


async def test_a_suspended_tenants_tasks_are_refused(batch_router, mocks, route, tmp_path, wait_for) -> None:
    harness, backend, keys = await secured(batch_router, mocks, route, tmp_path, workers=False)
    alpha = sdk(harness, keys["alpha"])
    uploaded = await alpha.files.create(file=("in.jsonl", io.BytesIO(LINE)), purpose="batch")
    batch = await alpha.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    holder = harness.router.policy
    snapshot = holder.snapshot.model_copy(deep=True)
    snapshot.tenants["alpha"] = TenantPolicy(name="alpha", scopes=BATCH, models=["m"], suspended=True)
    holder.set_snapshot(snapshot)
    system = harness.batch
    executor = RouterExecutor(harness.router.openai, holder, harness.router.auth)
    worker = Worker(system.queue, system.service.files, executor, system.service.metrics, FAST_WORKER)
    running = asyncio.ensure_future(worker.run())

    async def completed() -> Any:
        record = await system.queue.record(batch.id)
        return record if record is not None and record["status"] == "completed" else None

    try:
        record = await wait_for(completed)
    finally:
        await worker.stop(1)
        running.cancel()
    assert (record["completed"], record["failed"]) == ("0", "1")
    assert backend.state.requests == 0
    lines = (await system.service.content("alpha", record["error_file_id"])).splitlines()
    assert orjson.loads(lines[0])["response"]["status_code"] == 401
    await alpha.close()
