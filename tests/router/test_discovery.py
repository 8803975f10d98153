"""Routing-table discovery: parsing, atomic swaps, and live changes through the file source."""

from __future__ import annotations

import asyncio
import json

import pytest

from inferflux.router.discovery import TableError, parse_table

CHAT = "/v1/chat/completions"


def chat(model: str = "m") -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def test_parse_table_reads_the_operator_format() -> None:
    document = {
        "version": 1,
        "models": {
            "gemma": {
                "name": "gemma",
                "engine": "llamacpp",
                "balancer": "PrefixHash",
                "maxConcurrency": 3,
                "endpoints": [{"url": "http://10.0.0.7:8080", "pod": "p"}],
            }
        },
    }
    table = parse_table(json.dumps(document))
    assert table.models["gemma"].max_concurrency == 3
    assert table.models["gemma"].balancer == "PrefixHash"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("{", "not JSON"),
        ('{"models": {"m": {"engine": "llamacpp"}}}', "models.m.name"),
        ('{"bogus": 1}', "bogus"),
    ],
)
def test_parse_table_rejects_bad_documents_with_a_reason(document: str, reason: str) -> None:
    with pytest.raises(TableError, match=reason):
        parse_table(document)


async def test_added_and_removed_pods_take_effect_within_a_second(mocks, make_router, route) -> None:
    one, two = await mocks(), await mocks()
    harness = await make_router({"m": route([one.url])})
    harness.write_routes({"m": route([one.url, two.url])})
    assert await harness.wait_generation(2) < 1.0
    for _ in range(10):
        async with harness.post(CHAT, chat()) as response:
            assert response.status == 200
    assert two.state.requests >= 4  # the new pod shares the load
    harness.write_routes({"m": route([two.url])})
    assert await harness.wait_generation(3) < 1.0
    before = one.state.requests
    for _ in range(10):
        async with harness.post(CHAT, chat()) as response:
            assert response.status == 200
    assert one.state.requests == before  # the removed pod gets nothing new


async def test_model_swap_moves_traffic_in_one_write(mocks, make_router, route) -> None:
    old, new = await mocks(name="old"), await mocks(name="new")
    harness = await make_router({"m": route([old.url])})
    harness.write_routes({"m": route([new.url], revision="r2")})
    await harness.wait_generation(2)
    async with harness.post(CHAT, chat()) as response:
        assert response.status == 200
    assert (old.state.requests, new.state.requests) == (0, 1)


async def test_graceful_removal_under_load_fails_no_request(mocks, make_router, route) -> None:
    one, two = await mocks(delay_ms=20), await mocks(delay_ms=20)
    harness = await make_router({"m": route([one.url, two.url])})
    statuses: list[int] = []
    stop = asyncio.Event()

    async def client() -> None:
        body = {**chat(), "stream": True, "max_tokens": 5}
        while not stop.is_set():
            async with harness.post(CHAT, body) as response:
                raw = await response.read()
                statuses.append(response.status if raw.endswith(b"data: [DONE]\n\n") else -1)

    clients = [asyncio.ensure_future(client()) for _ in range(8)]
    try:
        await asyncio.sleep(0.4)
        harness.write_routes({"m": route([two.url])})  # pod one drains: in-flight streams finish on it
        await harness.wait_generation(2)
        await asyncio.sleep(0.05)  # requests routed just before the swap may still be arriving
        served_by_one = one.state.requests
        await asyncio.sleep(0.4)
    finally:
        # Stop the load even when an assertion failed, so the fixtures can shut the router down.
        stop.set()
        await asyncio.gather(*clients)
    assert statuses
    assert set(statuses) == {200}
    assert one.state.requests == served_by_one


async def test_a_bad_table_keeps_the_last_good_one(mocks, make_router, route) -> None:
    backend = await mocks()
    harness = await make_router({"m": route([backend.url])})
    harness.routes_file.write_text("{ not json")
    await asyncio.sleep(0.3)
    assert harness.router.holder.generation == 1
    async with harness.post(CHAT, chat()) as response:
        assert response.status == 200


async def test_readyz_reports_named_checks_and_accepts_new_ones(make_router, route) -> None:
    harness = await make_router({"m": route([])})
    async with harness.session.get(harness.url + "/readyz") as response:
        document = await response.json()
    assert response.status == 200
    assert document["checks"]["routes_loaded"]["ok"] is True
    harness.router.readiness.add("prompts_loaded", lambda: (False, "0 prompts"))
    async with harness.session.get(harness.url + "/readyz") as response:
        document = await response.json()
    assert response.status == 503
    assert document["checks"]["prompts_loaded"] == {"ok": False, "detail": "0 prompts"}
    for path in ("/healthz", "/livez"):
        async with harness.session.get(harness.url + path) as response:
            assert response.status == 200
