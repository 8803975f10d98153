"""The router's metrics: tokens by tenant (bounded), time per output token, queue wait."""

from __future__ import annotations

import asyncio
from typing import Any

from inferflux.router.metrics import OTHER, BoundedLabel, Metrics


def _value(metrics: Metrics, name: str, labels: dict[str, str]) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_a_bounded_label_names_the_first_values_and_folds_the_rest_into_other() -> None:
    label = BoundedLabel(2)
    assert [label(name) for name in ("a", "b", "c", "a", "d", "b")] == ["a", "b", OTHER, "a", OTHER, "b"]


async def test_a_stream_records_tokens_by_tenant_time_per_token_and_queue_wait(
    mocks: Any, make_router: Any, route: Any
) -> None:
    backend = await mocks(delay_ms=20.0)
    harness = await make_router({"m": route([backend.url], name="m")})
    request = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 4,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with harness.post("/v1/chat/completions", request) as response:
        assert response.status == 200
        await response.read()
    metrics = harness.router.metrics
    # Authentication is off in this harness: no tenant, counted as "-".
    assert _value(metrics, "inferflux_router_tenant_tokens_total", {"tenant": "-", "kind": "prompt"}) == 3
    assert _value(metrics, "inferflux_router_tenant_tokens_total", {"tenant": "-", "kind": "completion"}) == 4
    tpot = {"model": "m"}
    assert _value(metrics, "inferflux_router_time_per_output_token_seconds_count", tpot) == 1
    # Four chunks sent 20 ms apart: the three gaps after the first token are at least 10 ms each.
    assert _value(metrics, "inferflux_router_time_per_output_token_seconds_sum", tpot) >= 0.01
    assert _value(metrics, "inferflux_router_queue_wait_seconds_count", {"model": "m"}) == 1


async def test_a_whole_answer_has_no_time_per_token(mocks: Any, make_router: Any, route: Any) -> None:
    backend = await mocks()
    harness = await make_router({"m": route([backend.url], name="m")})
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    async with harness.post("/v1/chat/completions", request) as response:
        assert response.status == 200
    metrics = harness.router.metrics
    assert _value(metrics, "inferflux_router_tenant_tokens_total", {"tenant": "-", "kind": "completion"}) == 4
    assert _value(metrics, "inferflux_router_time_per_output_token_seconds_count", {"model": "m"}) == 0


def test_tenants_past_the_limit_share_one_series() -> None:
    metrics = Metrics(max_tenants=3)
    for index in range(50):
        metrics.tenant_tokens.labels(metrics.tenant_label(f"tenant-{index}"), "prompt").inc()
    tenants = {
        sample.labels["tenant"]
        for family in metrics.registry.collect()
        if family.name == "inferflux_router_tenant_tokens"
        for sample in family.samples
    }
    assert tenants == {"tenant-0", "tenant-1", "tenant-2", OTHER}
    assert _value(metrics, "inferflux_router_tenant_tokens_total", {"tenant": OTHER, "kind": "prompt"}) == 47


async def test_in_flight_and_queue_depth_are_read_from_the_model_slots_when_scraped(
    mocks: Any, make_router: Any, route: Any
) -> None:
    backend = await mocks(answer_delay_ms=400.0)
    harness = await make_router({"m": route([backend.url], name="m", maxConcurrency=1, maxQueue=4)})
    metrics = harness.router.metrics
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}

    async def ask() -> int:
        async with harness.post("/v1/chat/completions", request) as response:
            await response.read()
            return response.status

    calls = [asyncio.ensure_future(ask()) for _ in range(2)]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while _value(metrics, "inferflux_router_queue_depth", {"model": "m"}) < 1:  # one served, one waiting
        assert loop.time() < deadline, "the second request never queued"
        await asyncio.sleep(0.01)
    assert _value(metrics, "inferflux_router_in_flight", {"model": "m"}) == 1
    assert await asyncio.gather(*calls) == [200, 200]
    assert _value(metrics, "inferflux_router_in_flight", {"model": "m"}) == 0
    assert _value(metrics, "inferflux_router_queue_depth", {"model": "m"}) == 0
    async with harness.session.get(harness.url + "/metrics") as response:
        assert 'inferflux_router_in_flight{model="m"} 0.0' in await response.text()
