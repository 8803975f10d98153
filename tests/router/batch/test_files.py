"""The directory file store: whole writes, tenant scoping, no path outside its root, expiry."""

from __future__ import annotations

import asyncio
from pathlib import Path

from inferflux.router.batch.files import DirectoryFileStore, FileMeta


def meta(file_id: str = "file-abc", tenant: str = "team-a", expires_at: int | None = None) -> FileMeta:
    return FileMeta(file_id, tenant, 3, 100, "in.jsonl", "batch", expires_at)


async def test_a_file_is_read_back_by_its_tenant_only(tmp_path: Path) -> None:
    store = DirectoryFileStore(tmp_path)
    await store.put(meta(), b"abc")
    assert await store.content("team-a", "file-abc") == b"abc"
    assert (await store.meta("team-a", "file-abc")) == meta()
    assert await store.meta("team-b", "file-abc") is None
    assert await store.content("team-b", "file-abc") is None
    assert not await store.delete("team-b", "file-abc")
    assert await store.delete("team-a", "file-abc")
    assert await store.content("team-a", "file-abc") is None
    assert not await asyncio.to_thread(lambda: list(tmp_path.rglob("*.tmp")))


async def test_ids_and_tenants_cannot_leave_the_root(tmp_path: Path) -> None:
    store = DirectoryFileStore(tmp_path / "root")
    (tmp_path / "secret.json").write_text("{}")
    assert await store.meta("..", "file-abc") is None
    assert await store.meta("team-a", "../../secret") is None
    assert await store.content("team-a/..", "file-abc") is None


async def test_expired_files_are_removed(tmp_path: Path) -> None:
    store = DirectoryFileStore(tmp_path)
    await store.put(meta("file-old", expires_at=50), b"old")
    await store.put(meta("file-new", expires_at=500), b"new")
    await store.put(meta("file-kept"), b"kept")
    assert await store.expire(100) == 1
    assert await store.meta("team-a", "file-old") is None
    assert await store.content("team-a", "file-new") == b"new"
    assert await store.content("team-a", "file-kept") == b"kept"
