"""Batch files behind a small storage interface: inputs the client uploads, outputs the workers write.

`FileStore` is the interface (an S3-compatible store can implement it later); `DirectoryFileStore`
keeps each file on a volume as ``<root>/<tenant>/<file id>.jsonl`` beside its metadata
``<file id>.json``. Every operation is scoped to a tenant: a file id of another tenant is simply not
found. Writes go to a temporary name and are renamed into place, so a reader never sees half a file
and writing the same output twice (a finaliser that crashed and ran again) leaves one whole file.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

ANONYMOUS = "-"  # the tenant of every file when authentication is off
_TENANT = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_FILE_ID = re.compile(r"^file-[0-9a-zA-Z_-]{1,64}$")


def new_file_id() -> str:
    """A fresh, unguessable file id."""
    return "file-" + secrets.token_hex(12)


@dataclass(frozen=True, slots=True)
class FileMeta:
    """What OpenAI's ``FileObject`` says about a stored file."""

    id: str
    tenant: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    expires_at: int | None = None

    def document(self) -> dict[str, Any]:
        """OpenAI's ``FileObject``."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": self.expires_at,
        }


class FileStore(Protocol):
    """Where batch files live."""

    async def put(self, meta: FileMeta, content: bytes) -> None:
        """Store ``content`` under ``meta`` (replacing a file of the same id whole)."""

    async def meta(self, tenant: str, file_id: str) -> FileMeta | None:
        """The file's metadata, None when ``tenant`` has no such file."""

    async def content(self, tenant: str, file_id: str) -> bytes | None:
        """The file's bytes, None when ``tenant`` has no such file."""

    async def delete(self, tenant: str, file_id: str) -> bool:
        """Remove the file; False when there was none."""

    async def expire(self, now: float) -> int:
        """Remove every file whose ``expires_at`` has passed; how many went."""


class DirectoryFileStore:
    """Files on a local or mounted volume (one folder per tenant)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _paths(self, tenant: str, file_id: str) -> tuple[Path, Path] | None:
        if not (tenant == ANONYMOUS or _TENANT.match(tenant)) or not _FILE_ID.match(file_id):
            return None  # never a path outside the root
        folder = self.root / tenant
        return folder / f"{file_id}.json", folder / f"{file_id}.jsonl"

    async def put(self, meta: FileMeta, content: bytes) -> None:
        await asyncio.to_thread(self._put, meta, content)

    def _put(self, meta: FileMeta, content: bytes) -> None:
        paths = self._paths(meta.tenant, meta.id)
        if paths is None:
            raise ValueError(f"bad tenant or file id: {meta.tenant!r} {meta.id!r}")
        paths[0].parent.mkdir(parents=True, exist_ok=True)
        for path, data in ((paths[1], content), (paths[0], orjson.dumps(asdict(meta)))):
            temporary = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
            with temporary.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            temporary.replace(path)  # content first: metadata present means content complete

    async def meta(self, tenant: str, file_id: str) -> FileMeta | None:
        paths = self._paths(tenant, file_id)
        if paths is None:
            return None
        try:
            raw = await asyncio.to_thread(paths[0].read_bytes)
        except FileNotFoundError:
            return None
        return FileMeta(**orjson.loads(raw))

    async def content(self, tenant: str, file_id: str) -> bytes | None:
        paths = self._paths(tenant, file_id)
        if paths is None or await self.meta(tenant, file_id) is None:
            return None
        try:
            return await asyncio.to_thread(paths[1].read_bytes)
        except FileNotFoundError:
            return None

    async def delete(self, tenant: str, file_id: str) -> bool:
        return await asyncio.to_thread(self._delete, tenant, file_id)

    def _delete(self, tenant: str, file_id: str) -> bool:
        paths = self._paths(tenant, file_id)
        if paths is None or not paths[0].exists():
            return False
        paths[0].unlink(missing_ok=True)  # metadata first: the file is gone for readers at once
        paths[1].unlink(missing_ok=True)
        return True

    async def expire(self, now: float) -> int:
        return await asyncio.to_thread(self._expire, now)

    def _expire(self, now: float) -> int:
        removed = 0
        for path in self._metadata_files():
            try:
                meta = FileMeta(**orjson.loads(path.read_bytes()))
            except (OSError, orjson.JSONDecodeError, TypeError):
                continue
            if meta.expires_at is not None and meta.expires_at <= now:
                removed += self._delete(meta.tenant, meta.id)
        return removed

    def _metadata_files(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for folder in self.root.iterdir():
            if folder.is_dir():
                yield from folder.glob("file-*.json")


def now_seconds() -> int:
    """Whole epoch seconds, the unit of OpenAI's timestamps."""
    return int(time.time())
