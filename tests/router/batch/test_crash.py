"""Crash safety: separate worker processes SIGKILLed mid-run, and Redis killed and restarted (AOF).

Two ``python -m inferflux.router.batch`` processes work on 100 batches of 5 lines against a mock
backend whose answers take 40 ms. One worker is killed with SIGKILL three times (and started
again), then Redis is killed and started again on its AOF. Every batch must still complete, with
each custom_id exactly once in its output. The backend may have seen a task twice: one that was
running in a killed worker runs again elsewhere (the docs say so); its result is written once.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from inferflux.router.batch.files import ANONYMOUS, DirectoryFileStore
from inferflux.router.batch.metrics import BatchMetrics
from inferflux.router.batch.queue import BatchQueue
from inferflux.router.batch.records import Owner
from inferflux.router.batch.service import BatchCreate, BatchService
from inferflux.router.batch.validation import Limits

pytestmark = pytest.mark.slow
BATCHES, LINES = 100, 5


class WorkerProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "inferflux.router.batch"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def test_killed_workers_and_a_restarted_redis_lose_and_double_nothing(
    aof_redis: Any, mocks: Any, route: Any, tmp_path: Path, wait_for: Any
) -> None:
    backend = await mocks(answer_delay_ms=40)
    routes = tmp_path / "routes.json"
    routes.write_text(json.dumps({"version": 1, "models": {"m": route([backend.url])}}))
    files_dir = tmp_path / "files"
    env = {
        **os.environ,
        "INFERFLUX_AUTH": "false",
        "INFERFLUX_ROUTES_FILE": str(routes),
        "INFERFLUX_REDIS_URL": aof_redis.url,
        "INFERFLUX_BATCH_DIR": str(files_dir),
        "INFERFLUX_BATCH_WORKERS": "4",
        "INFERFLUX_BATCH_VISIBILITY_SECONDS": "2",
        "INFERFLUX_BATCH_BACKOFF_SECONDS": "0.05",
        "INFERFLUX_HOLD_SECONDS": "0",
        "INFERFLUX_LOG_LEVEL": "warning",
    }
    queue = BatchQueue.from_url(aof_redis.url)
    service = BatchService(queue, DirectoryFileStore(files_dir), lambda: ["m"], BatchMetrics(), Limits())
    lines = [
        {
            "custom_id": f"c{index}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1},
        }
        for index in range(LINES)
    ]
    uploaded = await service.upload(
        ANONYMOUS, "in.jsonl", "batch", b"\n".join(orjson.dumps(x) for x in lines)
    )
    request = BatchCreate(
        input_file_id=uploaded["id"], endpoint="/v1/chat/completions", completion_window="24h"
    )
    batch_ids = [
        (await service.create(Owner(ANONYMOUS), request, lambda _: True))["id"] for _ in range(BATCHES)
    ]
    total = BATCHES * LINES

    victim = WorkerProcess(env, tmp_path / "victim.log")
    steady = WorkerProcess(env, tmp_path / "steady.log")
    victim.start()
    steady.start()
    try:
        for share in (0.1, 0.2, 0.3):  # three SIGKILLs at moments the run has reached
            await wait_for(lambda share=share: backend.state.requests >= share * total, within=120, step=0.01)
            victim.kill()
            victim.start()
        await wait_for(lambda: backend.state.requests >= 0.45 * total, within=120, step=0.01)
        await queue.close()
        aof_redis.kill()
        await asyncio.sleep(0.5)
        aof_redis.start()
        queue = BatchQueue.from_url(aof_redis.url)
        service.queue = queue

        async def all_settled() -> bool:
            records = [await queue.record(batch_id) for batch_id in batch_ids]
            return all(record is not None and record["status"] == "completed" for record in records)

        await wait_for(all_settled, within=240, step=0.25)
    finally:
        victim.stop()
        steady.stop()
    written = collections.Counter()
    for batch_id in batch_ids:
        batch = await service.batch(ANONYMOUS, batch_id)
        assert batch["request_counts"] == {"total": LINES, "completed": LINES, "failed": 0}
        output = await service.content(ANONYMOUS, batch["output_file_id"])
        for line in output.splitlines():
            written[(batch_id, orjson.loads(line)["custom_id"])] += 1
    expected = {(batch_id, f"c{index}") for batch_id in batch_ids for index in range(LINES)}
    assert set(written) == expected  # nothing lost
    assert set(written.values()) == {1}  # nothing written twice
    seen = collections.Counter(backend.state.request_ids)
    assert set(seen) == {f"{b}:{c}" for b, c in expected}
    reruns = sum(seen.values()) - total
    print(f"\ntasks {total}, backend calls {sum(seen.values())}, re-run after kills {reruns}")
    assert reruns <= 3 * 4 + 2 * 4 * 2  # at most the tasks in flight in killed workers or at the outage
    await queue.close()
