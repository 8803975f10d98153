"""In-place hot swap vs a new runtime process, on the real runtime under streaming load.

Both runs move the traffic of one runtime from model A (the bundled Q4_K_M) to model B (its Q8_0
requantization) while clients stream 24-token completions back to back, and count what failed:

- in place: ``POST /admin/v1/swap`` to the serving process (load B, check it answers, switch,
  drain A). Switch time = the runtime's own ``switched_after_s``.
- new process (the baseline): what blue/green does at the least, without a scheduler or an image
  pull: start a second runtime on B, wait for ``/readyz``, point the clients at it, let the
  streams on A finish and stop A. Switch time = start -> clients pointed at B.

In both, traffic time = start -> the first stream B served began: a client starts its next
stream only when its stream on A has ended, so this includes the wait for A's streams.

The two alternate for ``--rounds`` rounds (A->B, then B->A), so both see the same machine load.

    python tests/bench/bench_inplace.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import orjson

HERE = Path(__file__).resolve().parent
TOKEN = "bench-admin-token"
STREAMERS, TOKENS = 3, 24
LOGS = None if os.environ.get("BENCH_VERBOSE") else subprocess.DEVNULL  # the runtimes' stderr


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench_runtime = _load("bench_runtime", HERE / "bench_runtime.py")
runtime_fixtures = _load("runtime_fixtures", HERE.parent / "runtime" / "conftest.py")


async def one_stream(client: httpx.AsyncClient, url: str) -> str:
    """Stream one completion; the model that served it, or RuntimeError when it came incomplete."""
    payload = {"prompt": "Once upon a time", "max_tokens": TOKENS, "stream": True}
    payload |= {
        "logit_bias": runtime_fixtures.NO_END_OF_GENERATION,
        "stream_options": {"include_usage": True},
    }
    names, tokens, done = set(), 0, False
    async with client.stream("POST", url + "/v1/completions", json=payload) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: "):
                chunk: dict[str, Any] = orjson.loads(line[6:])
                if "error" in chunk:
                    raise RuntimeError(chunk["error"].get("message", "error"))
                names.add(chunk["model"])
                tokens = (chunk.get("usage") or {}).get("completion_tokens", tokens)
    if len(names) != 1 or tokens != TOKENS or not done:
        raise RuntimeError(f"incomplete stream: {names} {tokens} tokens, done={done}")
    return str(names.pop())


class Load:
    """Clients streaming back to back against ``target`` (which may be re-pointed mid-run)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.failures: list[str] = []
        self.served: list[tuple[float, str]] = []  # (stream start, model) of complete streams
        self.inflight: Counter[str] = Counter()  # streams running, by target
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _stream(self, client: httpx.AsyncClient) -> None:
        target, started = self.target, time.perf_counter()
        self.inflight[target] += 1
        try:
            name = await one_stream(client, target)
        finally:
            self.inflight[target] -= 1
        self.served.append((started, name))

    async def _client(self) -> None:
        async with httpx.AsyncClient(timeout=120) as client:
            while not self._stop.is_set():
                try:
                    await self._stream(client)
                except (httpx.HTTPError, RuntimeError) as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client()) for _ in range(STREAMERS)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def served_by(self, name: str, after: float) -> float:
        """When the first complete stream served by ``name`` and begun after ``after`` began."""

        def starts() -> list[float]:
            return [t for t, model in self.served if model == name and t >= after]

        await until(lambda: bool(starts()))
        return min(starts())


def start(model: Path, name: str, admin: Path | None = None) -> tuple[str, Any]:
    port = bench_runtime.free_port()
    env = {
        **os.environ,
        "INFERFLUX_MODEL_PATH": str(model),
        "INFERFLUX_SERVED_NAME": name,
        "INFERFLUX_PORT": str(port),
        "INFERFLUX_HOST": "127.0.0.1",
        "INFERFLUX_PARALLEL": "4",
        "INFERFLUX_CONTEXT_SIZE": "2048",
        "INFERFLUX_THREADS": os.environ.get("BENCH_THREADS", "1"),
    }
    if admin is not None:
        env["INFERFLUX_ADMIN_TOKEN_FILE"] = str(admin)
    process = subprocess.Popen(
        [sys.executable, "-m", "inferflux.runtime"],
        env=env,
        cwd="/",
        stderr=LOGS,
    )
    return f"http://127.0.0.1:{port}", process


async def ready(url: str) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            try:
                if (await client.get(url + "/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)


def stop(process: Any) -> None:
    process.terminate()
    process.wait(timeout=30)


async def until(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` every 50 ms (the load's counters are plain fields, not events)."""
    while not condition():  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def warm(load: Load, name: str) -> None:
    """Let every client complete a stream on ``name`` first."""
    await until(lambda: sum(1 for _, model in load.served if model == name) >= STREAMERS)


async def in_place(a: tuple[Path, str], b: tuple[Path, str], admin: Path) -> dict[str, float]:
    url, process = start(*a, admin=admin)
    try:
        await ready(url)
        load = Load(url)
        load.start()
        await warm(load, a[1])
        began = time.perf_counter()
        async with httpx.AsyncClient(timeout=600) as client:
            response = await client.post(
                url + "/admin/v1/swap",
                json={"model_path": str(b[0]), "served_name": b[1]},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
        if response.status_code != 200:
            raise SystemExit(f"in-place swap failed: {response.status_code} {response.text}")
        traffic = await asyncio.wait_for(load.served_by(b[1], began), 120) - began
        await load.stop()
    finally:
        stop(process)
    switched = float(response.json()["switched_after_s"])
    return {"switch_s": switched, "traffic_s": traffic, "failed": len(load.failures)}


async def new_process(a: tuple[Path, str], b: tuple[Path, str]) -> dict[str, float]:
    url_a, process_a = start(*a)
    process_b = None
    try:
        await ready(url_a)
        load = Load(url_a)
        load.start()
        await warm(load, a[1])
        began = time.perf_counter()
        url_b, process_b = start(*b)
        await ready(url_b)
        load.target = url_b
        switched = time.perf_counter() - began
        await until(lambda: not load.inflight[url_a])  # A drains before it stops, as a pod does
        stop(process_a)
        traffic = await asyncio.wait_for(load.served_by(b[1], began), 120) - began
        await load.stop()
    finally:
        if process_a.poll() is None:
            stop(process_a)
        if process_b is not None:
            stop(process_b)
    return {"switch_s": switched, "traffic_s": traffic, "failed": len(load.failures)}


def summary(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


async def main(rounds: int) -> int:
    first = bench_runtime.ensure_model()
    a, b = (first, "q4km"), (runtime_fixtures.second_model(first), "q8")
    admin = Path(os.environ.get("TMPDIR", "/tmp")) / f"inferflux-bench-token-{os.getpid()}"
    admin.write_text(TOKEN)
    runs: dict[str, list[dict[str, float]]] = {"new process": [], "in place": []}
    try:
        for number in range(rounds):
            pair = (a, b) if number % 2 == 0 else (b, a)
            runs["new process"].append(await new_process(*pair))
            runs["in place"].append(await in_place(*pair, admin))
            print(f"round {number + 1}: " + ", ".join(f"{k} {v[-1]}" for k, v in runs.items()), flush=True)
    finally:
        admin.unlink()
    base, ours = runs["new process"], runs["in place"]
    print(f"\nmodel swap under {STREAMERS} streaming clients, median of {rounds} rounds")
    print("| metric | new process (baseline) | in place | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for key, label in (
        ("switch_s", "start -> B takes new requests (s)"),
        ("traffic_s", "start -> first stream B served (s)"),
    ):
        print(
            f"| {label} | {summary(base, key):.2f} | {summary(ours, key):.2f} | "
            f"{summary(ours, key) / summary(base, key):.2f} |"
        )
    print(
        f"| failed requests, all rounds | {sum(r['failed'] for r in base):.0f} | "
        f"{sum(r['failed'] for r in ours):.0f} | |"
    )
    return 1 if any(r["failed"] for r in base + ours) else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    sys.exit(asyncio.run(main(parser.parse_args().rounds)))
