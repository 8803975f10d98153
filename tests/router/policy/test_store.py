"""The policy store: the same operations on memory and on a real Redis, and replicas that converge."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from inferflux.crds.policy import ApiKeyRecord, TenantPolicy
from inferflux.router.identity.api_keys import KeyHasher, generate
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.policy.store import MemoryPolicyStore, PolicyStore, RedisPolicyStore, SealedSecret

HASHER = KeyHasher(b"s" * 32)
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def key_for(tenant: str, **extra: Any) -> ApiKeyRecord:
    return generate(HASHER, tenant, now=NOW, **extra)[1]


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Wait (bounded) until ``condition()`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[PolicyStore]:
    holder = PolicyHolder()
    made: PolicyStore
    if request.param == "memory":
        made = MemoryPolicyStore(holder)
    else:
        made = RedisPolicyStore.from_url(request.getfixturevalue("redis_url"), holder)
    await made.load()
    yield made
    await made.close()


async def test_tenants_are_stored_and_mirrored_into_the_holder(store: PolicyStore) -> None:
    tenant = TenantPolicy(name="team-a", scopes=["inference"], models=["gemma"])
    await store.put_tenant(tenant)
    assert await store.get_tenant("team-a") == tenant
    assert [t.name for t in await store.tenants()] == ["team-a"]
    assert store.holder.current.tenants["team-a"].models == ["gemma"]
    assert await store.delete_tenant("team-a") is True
    assert await store.delete_tenant("team-a") is False
    assert await store.get_tenant("team-a") is None
    assert "team-a" not in store.holder.current.tenants


async def test_keys_listed_by_tenant_and_revoked_once(store: PolicyStore) -> None:
    a, b = key_for("team-a"), key_for("team-b")
    await store.put_key(a)
    await store.put_key(b)
    assert [k.id for k in await store.keys("team-a")] == [a.id]
    assert {k.id for k in await store.keys()} == {a.id, b.id}
    first = await store.revoke(a.id, NOW)
    assert first is not None
    assert first.revoked_at == NOW
    again = await store.revoke(a.id, NOW + dt.timedelta(hours=1))
    assert again is not None
    assert again.revoked_at == NOW, "a second revocation keeps the first time"
    assert store.holder.current.keys[a.id].revoked_at == NOW
    assert await store.revoke("a" * 16, NOW) is None


async def test_rotation_stores_the_new_key_and_bounds_the_old_one(store: PolicyStore) -> None:
    old = key_for("team-a", expires_at=NOW + dt.timedelta(days=30))
    await store.put_key(old)
    new = key_for("team-a")
    previous = await store.rotate(old.id, new, dt.timedelta(minutes=10), now=NOW)
    assert previous is not None
    assert previous.replaced_by == new.id
    assert previous.expires_at == NOW + dt.timedelta(minutes=10)
    assert await store.get_key(new.id) == new
    assert (await store.get_key(old.id)) == previous
    assert store.holder.current.keys[new.id] == new
    # An old key that expires sooner than the overlap keeps its earlier expiry.
    soon = key_for("team-a", expires_at=NOW + dt.timedelta(seconds=5))
    await store.put_key(soon)
    bounded = await store.rotate(soon.id, key_for("team-a"), dt.timedelta(hours=1), now=NOW)
    assert bounded is not None
    assert bounded.expires_at == NOW + dt.timedelta(seconds=5)


async def test_sealed_secrets_are_kept_per_tenant(store: PolicyStore) -> None:
    sealed = SealedSecret(
        tenant="team-a", name="openai", key_version="k1", nonce="bm9uY2U=", ciphertext="Y3Q=", updated_at=NOW
    )
    await store.put_secret(sealed)
    await store.put_secret(sealed.model_copy(update={"tenant": "team-b"}))
    assert await store.get_secret("team-a", "openai") == sealed
    assert [s.tenant for s in await store.secrets("team-b")] == ["team-b"]
    assert await store.delete_secret("team-a", "openai") is True
    assert await store.get_secret("team-a", "openai") is None
    assert await store.delete_secret("team-a", "openai") is False


async def test_invalid_records_are_refused_before_they_are_stored(store: PolicyStore) -> None:
    bad = key_for("team-a").model_copy(update={"tenant": "Not A Name"})  # model_copy skips validation
    with pytest.raises(ValueError):
        await store.put_key(bad)
    assert await store.keys() == []


# Replicas sharing one Redis ----------------------------------------------------------------------


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[Callable[..., Awaitable[RedisPolicyStore]]]:
    """Start replicas that follow the store: ``await replicas(resync_seconds=...)``."""
    started: list[tuple[RedisPolicyStore, asyncio.Task[None]]] = []

    async def start(**options: Any) -> RedisPolicyStore:
        replica = RedisPolicyStore.from_url(redis_url, PolicyHolder(), reconnect_seconds=0.05, **options)
        task = asyncio.ensure_future(replica.follow())
        started.append((replica, task))
        await eventually(lambda: replica.holder.store_loaded)
        return replica

    yield start
    for replica, task in started:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await replica.close()


async def test_a_replica_loads_everything_at_start_and_follows_each_change(replicas: Any) -> None:
    writer = await replicas()
    await writer.put_tenant(TenantPolicy(name="team-a"))
    early = key_for("team-a")
    await writer.put_key(early)
    reader = await replicas()
    assert set(reader.holder.current.keys) == {early.id}, "loaded at start"
    late = key_for("team-a")
    await writer.put_key(late)
    await eventually(lambda: late.id in reader.holder.current.keys)
    await writer.revoke(early.id, NOW)
    await eventually(lambda: reader.holder.current.keys[early.id].revoked_at == NOW)
    await writer.delete_tenant("team-a")
    await eventually(lambda: "team-a" not in reader.holder.current.tenants)


async def test_a_missed_announcement_is_repaired_by_the_periodic_resync(
    replicas: Any, redis_url: str
) -> None:
    reader = await replicas(resync_seconds=0.2)
    loads = reader.loads
    record = key_for("team-a")
    # Written behind the store's back: no announcement, as if the message had been lost.
    client = Redis.from_url(redis_url)
    await client.hset(reader.keys_hash, record.id, record.model_dump_json(by_alias=True))
    await client.aclose()
    await eventually(lambda: record.id in reader.holder.current.keys)
    assert reader.loads > loads


async def test_a_replica_reloads_after_its_connection_is_cut(replicas: Any, redis_url: str) -> None:
    reader = await replicas(resync_seconds=3600)  # only a reconnect can repair what follows
    writer = await replicas(resync_seconds=3600)
    loads = reader.loads
    client = Redis.from_url(redis_url)
    record = key_for("team-a")
    # Cut every subscriber's connection and write without announcing, before the reader reconnects.
    async with client.pipeline(transaction=True) as pipe:
        pipe.client_kill_filter(_type="pubsub")
        pipe.hset(reader.keys_hash, record.id, record.model_dump_json(by_alias=True))
        await pipe.execute()
    await client.aclose()
    await eventually(lambda: record.id in reader.holder.current.keys)
    assert reader.loads > loads
    # And it follows announcements again on its new connection.
    other = key_for("team-a")
    await writer.put_key(other)
    await eventually(lambda: other.id in reader.holder.current.keys)


async def test_concurrent_revocation_and_rotation_lose_no_write(replicas: Any) -> None:
    one = await replicas()
    two = await replicas()
    keys = [key_for("team-a") for _ in range(10)]
    for record in keys:
        await one.put_key(record)
    fresh = [key_for("team-a") for _ in keys]
    await asyncio.gather(
        *(one.revoke(record.id, NOW) for record in keys),
        *(
            two.rotate(record.id, new, dt.timedelta(minutes=1), now=NOW)
            for record, new in zip(keys, fresh, strict=False)
        ),
    )
    for record, new in zip(keys, fresh, strict=False):
        stored = await one.get_key(record.id)
        assert stored is not None
        assert stored.revoked_at == NOW, "the revocation kept"
        assert stored.replaced_by == new.id, "the rotation kept"
