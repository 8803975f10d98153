"""Hot swaps between two real models under streaming load, inside a memory budget.

The runtime is given a budget (``INFERFLUX_MEMORY_LIMIT``) that holds both models at once. While
clients stream completions without pause, it swaps Q4_K_M -> Q8_0 -> Q4_K_M ... ten times. No
request may fail, every stream must come whole (all its tokens, its finish, ``[DONE]``) and name
one model in every chunk, and the process's resident memory must never pass the budget. A budget
too small for two models must refuse the swap with 409, which the operator's swap client reads as
a refusal that turns the rollout to blue/green, and keep the first model serving. A swap from
Gemma-3 to SmolLM2 and back crosses architectures and chat templates.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
import pytest

from inferflux.crds.inferencemodel import RolloutStrategy
from inferflux.operator.strategy import Choice, after_refusal
from inferflux.operator.swap_client import Outcome, SwapRequest, swap_pods

from .conftest import NO_END_OF_GENERATION, admin_swap, metric, start_runtime, stop_runtime

pytestmark = pytest.mark.slow

TOKEN = "hot-swap-admin-token"
BUDGET = 1280 << 20  # the guard admits B beside A; the measured peak (VmHWM) is about 790 MiB
TIGHT_BUDGET = 640 << 20  # one model fits, a second one beside it does not
SWAPS = 10
STREAM_TOKENS = 24
STREAMERS = 3


def runtime_env(token_file: Path, budget: int) -> dict[str, str]:
    return {
        "INFERFLUX_ADMIN_TOKEN_FILE": str(token_file),
        "INFERFLUX_MEMORY_LIMIT": str(budget),
        "INFERFLUX_SERVED_NAME": "q4km",
        "INFERFLUX_PARALLEL": "2",
        "INFERFLUX_CONTEXT_SIZE": "1024",
    }


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN)
    return path


def swap(base: str, path: Path, name: str) -> httpx.Response:
    return admin_swap(base, {"model_path": str(path), "served_name": name}, TOKEN)


def stream_once(client: httpx.Client, base: str) -> tuple[set[str], str | None, int, bool]:
    """One streamed completion: the model names its chunks carried, its finish, tokens, [DONE]."""
    payload = {
        "prompt": "Once upon a time",
        "max_tokens": STREAM_TOKENS,
        "stream": True,
        "stream_options": {"include_usage": True},
        "logit_bias": NO_END_OF_GENERATION,  # every stream runs its full length
    }
    names: set[str] = set()
    finish, tokens, done = None, 0, False
    with client.stream("POST", base + "/v1/completions", json=payload) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                done = True
                continue
            chunk: dict[str, Any] = orjson.loads(line[6:])
            if "error" in chunk:
                raise AssertionError(chunk["error"])
            names.add(chunk["model"])
            for choice in chunk["choices"]:
                finish = choice["finish_reason"] or finish
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return names, finish, tokens, done


class Load:
    """Streamers that request completions back to back until stopped, recording every outcome."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.stop = threading.Event()
        self.served: Counter[str] = Counter()
        self.failures: list[str] = []
        self._threads = [threading.Thread(target=self._run) for _ in range(STREAMERS)]

    def _run(self) -> None:
        with httpx.Client(timeout=120) as client:
            while not self.stop.is_set():
                try:
                    names, finish, tokens, done = stream_once(client, self.base)
                except (httpx.HTTPError, AssertionError) as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                if len(names) != 1 or finish != "length" or tokens != STREAM_TOKENS or not done:
                    self.failures.append(f"incomplete: {names} {finish} {tokens} {done}")
                else:
                    self.served[names.pop()] += 1

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join()


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing from /proc/{pid}/status")


@pytest.fixture
def budget_runtime(model_path: Path, token_file: Path) -> Iterator[tuple[str, int]]:
    base, process = start_runtime(model_path, **runtime_env(token_file, BUDGET))
    yield base, process.pid
    stop_runtime(process)


def test_ten_hot_swaps_under_streaming_load(
    budget_runtime: tuple[str, int], model_path: Path, second_model_path: Path
) -> None:
    base, pid = budget_runtime
    models = [(second_model_path, "q8"), (model_path, "q4km")]
    rss_peak = 0
    with Load(base) as load:
        for number in range(SWAPS):
            served_before = sum(load.served.values())
            while sum(load.served.values()) == served_before:  # each model serves before the next swap
                time.sleep(0.05)
                rss_peak = max(rss_peak, vm_kib(pid, "VmRSS"))
            path, name = models[number % 2]
            response = swap(base, path, name)
            assert response.status_code == 200, response.text
            assert response.json()["served_name"] == name
            assert response.json()["drained"] is True
            rss_peak = max(rss_peak, vm_kib(pid, "VmRSS"))
        time.sleep(1)
    assert load.failures == []
    assert set(load.served) == {"q4km", "q8"}, load.served
    assert sum(load.served.values()) >= SWAPS
    high_water = vm_kib(pid, "VmHWM") << 10  # the kernel's own peak: no sample can miss it
    assert max(rss_peak << 10, high_water) <= BUDGET, f"peak RSS {high_water >> 20} MiB"
    assert metric(base, "inferflux_runtime_memory_headroom_ratio") > 1.3  # room for another swap
    assert metric(base, "inferflux_runtime_memory_headroom_low") == 0.0


async def test_swap_refused_when_two_models_do_not_fit(
    model_path: Path, second_model_path: Path, token_file: Path
) -> None:
    base, process = start_runtime(model_path, **runtime_env(token_file, TIGHT_BUDGET))
    try:
        refused = swap(base, second_model_path, "q8")
        assert refused.status_code == 409
        error = refused.json()["error"]
        assert error["code"] == "insufficient_memory"
        assert "(budget)" in error["message"]
        # the operator's own client reads the same refusal, and the strategy turns to blue/green
        request = SwapRequest(str(second_model_path), "q8", "")
        port = int(base.rsplit(":", 1)[1])
        async with aiohttp.ClientSession() as session:
            result = await swap_pods(session, ["127.0.0.1"], TOKEN, request, port)
        assert result.outcome == Outcome.REFUSED
        in_place = Choice(RolloutStrategy.IN_PLACE, "SourceOnly", "only the weights changed")
        fallback = after_refusal(in_place, result.reason)
        assert fallback.strategy == RolloutStrategy.BLUE_GREEN
        assert "does not fit" in fallback.message
        assert metric(base, "inferflux_runtime_memory_headroom_low") == 1.0
        with httpx.Client(timeout=60) as client:
            assert stream_once(client, base) == ({"q4km"}, "length", STREAM_TOKENS, True)
    finally:
        stop_runtime(process)


def test_a_swap_across_architectures_brings_the_new_models_chat_template(
    model_path: Path, chat_model_path: Path, token_file: Path
) -> None:
    """Gemma-3 (a base model, the plain-transcript fallback) to SmolLM2 (llama, a ChatML template)."""
    base, process = start_runtime(model_path, **runtime_env(token_file, BUDGET))
    question = {
        "messages": [{"role": "user", "content": "Tell me the capital of France."}],
        "max_tokens": 32,
        "temperature": 0,
    }
    try:
        with httpx.Client(timeout=120) as client:
            response = swap(base, chat_model_path, "smollm2-135m")
            assert response.status_code == 200, response.text
            assert response.json()["previous"] == "q4km"
            assert [m["id"] for m in client.get(base + "/v1/models").json()["data"]] == ["smollm2-135m"]
            reply = client.post(base + "/v1/chat/completions", json=question).json()
            assert reply["model"] == "smollm2-135m"
            assert "Paris" in reply["choices"][0]["message"]["content"]
            assert swap(base, model_path, "q4km").status_code == 200
            assert stream_once(client, base) == ({"q4km"}, "length", STREAM_TOKENS, True)
    finally:
        stop_runtime(process)
