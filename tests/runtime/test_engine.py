"""Continuous batching, measured from the engine: concurrent sequences share each decode step."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from .conftest import NO_END_OF_GENERATION, metric

pytestmark = pytest.mark.slow

STEPS = "inferflux_runtime_decode_step_sequences"
TOKENS = 64


def steps_by_size(base: str) -> dict[int, float]:
    """Decode steps so far, by how many sequences each carried (1 to 4), from the engine's histogram."""
    cumulative = [0.0] + [metric(base, f'{STEPS}_bucket{{le="{size}.0"}}') for size in range(1, 5)]
    return {size: cumulative[size] - cumulative[size - 1] for size in range(1, 5)}


async def test_four_streams_share_their_decode_steps(runtime_url: str) -> None:
    before = steps_by_size(runtime_url)

    async def one(client: httpx.AsyncClient, index: int) -> int:
        payload = {
            "prompt": f"Story {index}: the lighthouse keeper",
            "max_tokens": TOKENS,
            "temperature": 0.8,
            "seed": index,
            "stream": True,
            "logit_bias": NO_END_OF_GENERATION,
        }
        chunks = 0
        async with client.stream("POST", runtime_url + "/v1/completions", json=payload) as response:
            async for line in response.aiter_lines():
                chunks += line.startswith("data: {")
        return chunks

    async with httpx.AsyncClient(timeout=120) as client:
        await asyncio.gather(*(one(client, i) for i in range(4)))
    after = steps_by_size(runtime_url)
    shared = {size: after[size] - before[size] for size in after}
    # One global lock would decode one sequence per step (shared[4] == 0). With continuous batching
    # the four streams, admitted within a few steps of each other, decode most tokens together.
    print(f"decode steps by sequences carried, 4 streams of {TOKENS} tokens: {shared}")
    assert shared[4] >= TOKENS // 2, shared
    sequence_steps = sum(size * count for size, count in shared.items())
    assert sequence_steps >= 4 * TOKENS  # every token of every stream came from some step
