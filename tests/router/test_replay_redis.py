"""The replay buffer on Redis Streams, against a real redis-server (tests/redis_server.py).

Two store objects on one Redis stand for two router processes: what one writes, the other reads.
The ``redis`` fixture is in tests/router/conftest.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from inferflux.router.replay import Evicted, MemoryReplayStore, ProducerGone, StoreUnavailable
from inferflux.router.replay_redis import RedisReplayStore, entry_id, offset_of


@pytest.fixture
async def stores(redis: Any) -> AsyncIterator[tuple[RedisReplayStore, RedisReplayStore]]:
    """A producing and a reading store (two router processes) on the same Redis."""
    a = RedisReplayStore.from_url(redis.url, ttl=60, max_chunks=100)
    b = RedisReplayStore.from_url(redis.url, ttl=60, max_chunks=100)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


def test_entry_ids_encode_offsets_exactly() -> None:
    assert [offset_of(entry_id(n)) for n in (0, 1, 59, 10**9)] == [0, 1, 59, 10**9]
    assert entry_id(0) > "0-1"  # after the creation marker


async def test_a_reader_elsewhere_gets_exactly_the_entries_from_its_offset(
    stores: tuple[RedisReplayStore, RedisReplayStore],
) -> None:
    a, b = stores
    await a.create("s1")
    for i in range(60):
        assert await a.append("s1", "data", b'"t%d"' % i) == i
    assert await b.exists("s1")
    assert b.shared("s1")
    entries = await b.read("s1", 20, 0)
    assert [e.offset for e in entries] == list(range(20, 60))
    assert [e.payload for e in entries] == [b'"t%d"' % i for i in range(20, 60)]
    assert {e.kind for e in entries} == {"data"}
    assert await b.read("s1", 60, 0) == []  # wait 0: no blocking at the end


async def test_a_blocked_reader_wakes_on_the_next_entry(
    stores: tuple[RedisReplayStore, RedisReplayStore],
) -> None:
    a, b = stores
    await a.create("s2")
    assert await b.read("s2", 0, 0) == []  # an empty stream exists and has nothing yet
    reader = asyncio.ensure_future(b.read("s2", 0, 10))
    await asyncio.sleep(0.05)
    assert not reader.done()
    await a.append("s2", "data", b'"x"')
    await a.append("s2", "done", b"{}")
    entries = await asyncio.wait_for(reader, 5)
    assert (entries[0].offset, entries[0].kind) == (0, "data")
    assert [(e.offset, e.kind) for e in await b.read("s2", 1, 0)] == [(1, "done")]
    with pytest.raises(Evicted):  # the stream is finished: this process appends no more
        await a.append("s2", "data", b'"late"')


async def test_a_blocked_read_times_out_empty(stores: tuple[RedisReplayStore, RedisReplayStore]) -> None:
    a, b = stores
    await a.create("s3")
    assert await b.read("s3", 0, 0.05) == []


async def test_length_is_bounded_and_a_reader_behind_the_bound_is_evicted(redis: Any) -> None:
    store = RedisReplayStore.from_url(redis.url, ttl=60, max_chunks=5)
    try:
        await store.create("s4")
        for i in range(10):
            await store.append("s4", "data", b"%d" % i)
        assert await store.client.xlen(store.key("s4")) == 5
        with pytest.raises(Evicted):
            await store.read("s4", 2, 0)
        assert [e.offset for e in await store.read("s4", 5, 0)] == [5, 6, 7, 8, 9]
    finally:
        await store.close()


async def test_streams_expire_after_the_token_ttl(redis: Any) -> None:
    store = RedisReplayStore.from_url(redis.url, ttl=0.3)
    try:
        await store.create("s5")
        await store.append("s5", "data", b'"x"')
        assert 0 < await store.client.pttl(store.key("s5")) <= 300
        for _ in range(100):
            if not await store.exists("s5"):
                break
            await asyncio.sleep(0.05)
        assert not await store.exists("s5")
        with pytest.raises(Evicted):
            await store.read("s5", 0, 0)
        with pytest.raises(Evicted):  # appending to an expired stream does not bring it back
            await store.append("s5", "data", b'"y"')
        assert not await store.client.exists(store.key("s5"))
    finally:
        await store.close()


async def test_unknown_streams_are_evicted_not_waited_for(
    stores: tuple[RedisReplayStore, RedisReplayStore],
) -> None:
    _, b = stores
    assert not await b.exists("nope")
    with pytest.raises(Evicted):
        await asyncio.wait_for(b.read("nope", 0, 10), 5)


async def test_during_an_outage_new_streams_live_in_memory_and_redis_streams_are_unavailable(
    redis: Any,
) -> None:
    store = RedisReplayStore.from_url(redis.url, ttl=60, fallback=MemoryReplayStore())
    try:
        await store.create("before")
        await store.append("before", "data", b'"x"')
        redis.stop()
        with pytest.raises(StoreUnavailable):
            await store.exists("before")
        with pytest.raises(StoreUnavailable):
            await store.read("before", 0, 1)
        with pytest.raises(StoreUnavailable):
            await store.append("before", "data", b'"y"')
        await store.create("during")  # no error: kept in this process
        assert not store.shared("during")
        assert await store.append("during", "data", b'"z"') == 0
        assert [e.payload for e in await store.read("during", 0, 0)] == [b'"z"']
        assert await store.exists("during")
        redis.start()
        await store.create("after")
        assert store.shared("after")
        assert await store.client.exists(store.key("after"))
    finally:
        await store.close()


async def read_until_gone(store: RedisReplayStore, stream_id: str) -> None:
    """Read on at the end of the stream, as a reader between heartbeats does, until it fails."""
    while True:
        await store.read(stream_id, 1, 0.05)


async def test_a_reader_learns_that_the_producer_died_instead_of_waiting_for_ever(redis: Any) -> None:
    producer = RedisReplayStore.from_url(redis.url, lease=0.3)
    reader = RedisReplayStore.from_url(redis.url)
    try:
        await producer.create("s6")
        await producer.append("s6", "data", b'"x"')
        assert await reader.read("s6", 1, 0.05) == []  # alive: nothing yet, keep waiting
        await asyncio.sleep(0.5)
        assert await reader.read("s6", 1, 0.05) == []  # the lease is renewed while it produces
        await producer.close()  # the producing process stops renewing (it died)
        with pytest.raises(ProducerGone):  # bounded: the lease lapses after 0.3 s
            await asyncio.wait_for(read_until_gone(reader, "s6"), 10)
        assert [e.payload for e in await reader.read("s6", 0, 0)] == [b'"x"']  # what it made is kept
    finally:
        await reader.close()


async def test_a_finished_stream_drops_its_lease_and_reads_to_its_end(redis: Any) -> None:
    producer = RedisReplayStore.from_url(redis.url, lease=0.3)
    try:
        await producer.create("s7")
        await producer.append("s7", "data", b'"x"')
        await producer.append("s7", "done", b"{}")
        assert not await producer.client.exists(producer.lease_key("s7"))
        await asyncio.sleep(0.4)
        assert [(e.offset, e.kind) for e in await producer.read("s7", 1, 0.05)] == [(1, "done")]
    finally:
        await producer.close()
