"""The fair queue through the real router: tenants' bands and shares, the priority header, 429s."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from inferflux.crds.policy import PolicySnapshot, TenantPolicy
from inferflux.crds.scheduling import Scheduling
from inferflux.router.identity import api_keys
from inferflux.router.policy.effective import PolicyHolder

TENANTS = {
    "gold": Scheduling(priority=2),
    "a": Scheduling(),
    "b": Scheduling(),
    "bulk": Scheduling(priority=-1),
}


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Wait, bounded, until ``condition()`` holds."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - the state polled has no event to wait on
            await asyncio.sleep(0.005)


async def tenants_router(
    make_router: Any, route: Any, mock: Any, tmp_path: Path, **limits: int
) -> tuple[Any, dict[str, str]]:
    """A router with auth on, one key per tenant, and model ``m`` on ``mock`` with ``limits``."""
    secret = tmp_path / "secret"
    secret.write_bytes(b"s" * 32)
    hasher = api_keys.load_hasher(str(secret))
    holder = PolicyHolder()
    holder.set_snapshot(
        PolicySnapshot(
            tenants={name: TenantPolicy(name=name, scheduling=rule) for name, rule in TENANTS.items()}
        )
    )
    keys = {}
    for name in TENANTS:
        key, record = api_keys.generate(hasher, name)
        holder.put_key(record.id, record)
        keys[name] = key
    harness = await make_router(
        {"m": route([mock.url], **limits)}, policy=holder, auth=True, auth_secret_file=str(secret)
    )
    return harness, keys


async def chat(harness: Any, key: str, tag: str, **extra: Any) -> tuple[int, Mapping[str, str], bytes]:
    headers = {"authorization": f"Bearer {key}", **extra.pop("headers", {})}
    document = {"model": "m", "messages": [{"role": "user", "content": tag}], "max_tokens": 2, **extra}
    async with harness.post("/v1/chat/completions", document, headers=headers) as response:
        return response.status, response.headers.copy(), await response.read()


async def queued(harness: Any, count: int) -> None:
    """Wait until ``count`` requests wait in model m's queue."""
    limiters = harness.router.dispatcher.limiters
    await until(lambda: "m" in limiters and limiters["m"].queued >= count)


async def slot_held(
    make_router: Any, route: Any, mock: Any, tmp_path: Path, max_queue: int
) -> tuple[Any, dict[str, str], asyncio.Future[Any]]:
    """A router whose model has one slot, held by tenant a's slow stream (about a second)."""
    harness, keys = await tenants_router(
        make_router, route, mock, tmp_path, max_concurrency=1, max_queue=max_queue
    )
    holder = asyncio.ensure_future(
        chat(harness, keys["a"], "hold", stream=True, max_tokens=20, mock_delay_ms=50)
    )
    await until(lambda: mock.state.requests >= 1)
    return harness, keys, holder


def tags(mock: Any) -> list[str]:
    return [body["messages"][0]["content"] for body in mock.state.bodies]


async def test_bands_then_fair_shares_decide_who_goes_next(make_router, route, mocks, tmp_path) -> None:
    mock = await mocks()
    harness, keys, holder = await slot_held(make_router, route, mock, tmp_path, max_queue=16)
    order = [("bulk", "bulk-1"), ("a", "a-1"), ("a", "a-2"), ("a", "a-3"), ("b", "b-1"), ("gold", "gold-1")]
    waiting = []
    for count, (tenant, tag) in enumerate(order, start=1):
        headers = {"x-inferflux-priority": "9"} if tenant == "gold" else {}
        waiting.append(asyncio.ensure_future(chat(harness, keys[tenant], tag, headers=headers)))
        await queued(harness, count)
    assert (await holder)[0] == 200
    answers = await asyncio.gather(*waiting)
    assert [status for status, _, _ in answers] == [200] * 6
    # gold's band first (the header asked 9, the policy's 2 stands); then b, whose tenant had not
    # used the model, before a's second and third; the sheddable band last.
    assert tags(mock) == ["hold", "gold-1", "b-1", "a-1", "a-2", "a-3", "bulk-1"]
    assert mock.state.priorities == ["0", "2", "0", "0", "0", "0", "-1"]
    page = await (await harness.session.get(harness.url + "/metrics")).text()
    assert 'inferflux_router_fairness_queued_total{model="m",priority="0",tenant="a"} 3.0' in page
    assert 'inferflux_router_fairness_admitted_total{model="m",priority="2",tenant="gold"} 1.0' in page


async def test_the_header_lowers_a_request_into_the_sheddable_band(
    make_router, route, mocks, tmp_path
) -> None:
    mock = await mocks()
    harness, keys, holder = await slot_held(make_router, route, mock, tmp_path, max_queue=4)
    lowered = [
        asyncio.ensure_future(chat(harness, keys["b"], f"low-{i}", headers={"x-inferflux-priority": "-5"}))
        for i in range(2)
    ]
    await queued(harness, 2)
    status, headers, body = await chat(harness, keys["b"], "low-3", headers={"x-inferflux-priority": "-5"})
    assert status == 429
    assert headers["retry-after"] == "1"
    assert b"sheddable" in body
    status, _, body = await chat(harness, keys["b"], "bad", headers={"x-inferflux-priority": "soon"})
    assert status == 400
    assert b"x-inferflux-priority" in body
    await holder
    assert [status for status, _, _ in await asyncio.gather(*lowered)] == [200, 200]
    assert mock.state.priorities[1:] == ["-5", "-5"]


async def test_a_full_queue_refuses_the_tenant_over_its_share(make_router, route, mocks, tmp_path) -> None:
    mock = await mocks()
    harness, keys, holder = await slot_held(make_router, route, mock, tmp_path, max_queue=3)
    flood = []
    for i in range(3):
        flood.append(asyncio.ensure_future(chat(harness, keys["a"], f"a-{i}")))
        await queued(harness, i + 1)
    status, headers, _ = await chat(harness, keys["a"], "a-over")
    assert status == 429
    assert "retry-after" in headers
    fair = asyncio.ensure_future(chat(harness, keys["b"], "b-1"))  # pushes out a's newest
    async with asyncio.timeout(10):
        displaced = await flood[2]
    assert displaced[0] == 429
    assert b"another tenant" in displaced[2]
    assert mock.state.requests == 1  # all of this while the slot was held
    await holder
    assert [status for status, _, _ in await asyncio.gather(fair, *flood[:2])] == [200, 200, 200]
    assert tags(mock) == ["hold", "b-1", "a-0", "a-1"]
