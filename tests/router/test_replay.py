"""The in-memory replay buffer."""

from __future__ import annotations

import asyncio

import pytest

from inferflux.router.replay import Evicted, MemoryReplayStore


async def test_readers_get_entries_from_their_offset_and_wait_for_more() -> None:
    store = MemoryReplayStore()
    await store.create("s")
    for i in range(3):
        await store.append("s", "data", b'"%d"' % i)
    assert [e.payload for e in await store.read("s", 1, 0)] == [b'"1"', b'"2"']
    reader = asyncio.ensure_future(store.read("s", 3, 5))
    await asyncio.sleep(0.01)
    assert not reader.done()
    await store.append("s", "done", b"{}")
    entries = await asyncio.wait_for(reader, 1)
    assert [(e.offset, e.kind) for e in entries] == [(3, "done")]


async def test_read_times_out_empty() -> None:
    store = MemoryReplayStore()
    await store.create("s")
    assert await store.read("s", 0, 0.01) == []


async def test_bounds_evict_old_streams_and_old_chunks() -> None:
    store = MemoryReplayStore(max_streams=2, max_chunks=3)
    for name in ("a", "b", "c"):
        await store.create(name)
    assert not await store.exists("a")
    with pytest.raises(Evicted):
        await store.read("a", 0, 0)
    for i in range(5):
        await store.append("c", "data", b"%d" % i)
    with pytest.raises(Evicted):
        await store.read("c", 1, 0)  # offsets 0 and 1 fell out of the per-stream bound
    assert [e.offset for e in await store.read("c", 2, 0)] == [2, 3, 4]


async def test_finished_streams_linger_then_go() -> None:
    store = MemoryReplayStore(linger=0.05)
    await store.create("s")
    await store.append("s", "done", b"{}")
    assert await store.exists("s")
    await asyncio.sleep(0.1)
    assert not await store.exists("s")
