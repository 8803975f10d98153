"""Requests for a model that is loading wait for its first ready replica, bounded in time and number."""

from __future__ import annotations

import asyncio
from typing import Any

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


async def ask(harness: Any) -> tuple[int, Any]:
    async with harness.post("/v1/chat/completions", CHAT) as response:
        return response.status, await response.json()


async def until_held(harness: Any, count: int) -> None:
    gauge = harness.router.metrics.held.labels("m")
    for _ in range(500):
        if gauge._value.get() == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} requests not held in time")


async def test_a_request_for_a_loading_model_is_served_once_a_replica_is_ready(
    mocks: Any, make_router: Any, route: Any
) -> None:
    backend = await mocks()
    harness = await make_router({"m": route([])}, hold_seconds=10.0)

    held = asyncio.ensure_future(ask(harness))
    await until_held(harness, 1)  # held, not refused
    assert not held.done()
    harness.write_routes({"m": route([backend.url])})  # the model's first replica becomes ready
    status, document = await asyncio.wait_for(held, 10)
    assert status == 200, document
    assert document["choices"]
    assert harness.router.metrics.held.labels("m")._value.get() == 0


async def test_a_request_held_past_the_limit_gets_503_with_retry_after(make_router: Any, route: Any) -> None:
    harness = await make_router({"m": route([])}, hold_seconds=0.3)
    async with harness.post("/v1/chat/completions", CHAT) as response:
        document = await response.json()
        assert response.status == 503
        assert response.headers["retry-after"] == "1"
    assert document["error"]["code"] == "unavailable"
    assert "no ready replica after 0.3 s" in document["error"]["message"]


async def test_held_requests_are_bounded_by_the_models_queue(make_router: Any, route: Any) -> None:
    harness = await make_router({"m": route([], max_queue=1)}, hold_seconds=1.0)
    first = asyncio.ensure_future(ask(harness))
    await until_held(harness, 1)
    async with harness.post("/v1/chat/completions", CHAT) as response:
        assert response.status == 503, "over the bound: refused at once, not held"
        assert "after" not in (await response.json())["error"]["message"]
    status, _ = await asyncio.wait_for(first, 10)
    assert status == 503, "the held one still gets its answer when its time is up"


async def test_an_unknown_model_is_404_at_once(make_router: Any, route: Any) -> None:
    harness = await make_router({"m": route([])}, hold_seconds=5.0)
    async with harness.post("/v1/chat/completions", {**CHAT, "model": "nope"}) as response:
        assert response.status == 404
