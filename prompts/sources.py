"""Where the resolver gets prompts from: the source interface and the directory source.

A source answers ``fetch(id, version)`` from its own store, lists ids to preload, and streams the ids
that changed so the resolver can refresh them without a restart. Two implementations exist: a
directory of manifests (local mode, and the embedded fallback shipped in the package), and the
ConfigMaps the operator writes (``configmap_source``). Specs whose checksum does not match their
content are refused by every source.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from inferflux.crds.prompt import PromptSpec
from inferflux.prompts.catalog import Catalog
from inferflux.prompts.checksum import ChecksumError, verify
from inferflux.prompts.manifest import ManifestError, load_manifest, manifest_files
from inferflux.prompts.metrics import REJECTED_TOTAL

log = logging.getLogger(__name__)

EMBEDDED_DIR = Path(__file__).resolve().parent / "manifests"


class PromptSource(Protocol):
    """A store of prompts the resolver reads."""

    async def fetch(self, prompt_id: str, version: str | None = None) -> PromptSpec | None:
        """The spec of ``id`` (latest) or ``id@version``; None when the source does not have it."""
        ...

    async def top(self, count: int) -> list[str]:
        """Up to ``count`` ids worth loading before the first request."""
        ...

    def changes(self) -> AsyncIterator[str]:
        """Ids whose content changed, as they change (runs until cancelled)."""
        ...

    async def close(self) -> None:
        """Release connections and tasks."""
        ...


def accepted(spec: PromptSpec, where: str) -> bool:
    """Whether a source may serve ``spec``: only when its checksum matches its content."""
    try:
        verify(spec)
    except ChecksumError as error:
        REJECTED_TOTAL.labels(reason="checksum").inc()
        log.warning("refusing prompt %s@%s from %s: %s", spec.id, spec.version, where, error)
        return False
    return True


def read_directory(root: Path) -> dict[str, PromptSpec]:
    """Every valid, correctly sealed manifest under ``root``, by file name."""
    found: dict[str, PromptSpec] = {}
    for path in manifest_files([root]) if root.is_dir() else []:
        try:
            spec = load_manifest(path)
        except ManifestError as error:
            REJECTED_TOTAL.labels(reason="invalid").inc()
            log.warning("skipping prompt manifest %s: %s", path.name, error)
            continue
        if accepted(spec, path.name):
            found[path.name] = spec
    return found


def directory_stamp(root: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when any manifest in ``root`` is added, removed or edited."""
    if not root.is_dir():
        return ()
    return tuple(
        (p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in manifest_files([root]) if p.is_file()
    )


class DirectorySource:
    """Manifests in a directory, re-read when files change (polled: no inotify dependency)."""

    def __init__(self, root: Path, poll_interval: float = 1.0) -> None:
        self.root = root
        self.poll_interval = poll_interval
        self._catalog = Catalog()
        self._stamp: tuple[tuple[str, int, int], ...] | None = None
        self._lock = asyncio.Lock()
        self._changed: asyncio.Queue[str] = asyncio.Queue()

    async def _refresh(self) -> set[str]:
        """Re-read the directory when it changed; returns the ids that changed."""
        async with self._lock:
            stamp = await asyncio.to_thread(directory_stamp, self.root)
            if stamp == self._stamp:
                return set()
            specs = await asyncio.to_thread(read_directory, self.root)
            self._stamp = stamp
            changed: set[str] = set()
            for key in self._catalog.keys() - set(specs):
                changed |= self._catalog.remove(key)
            for key, spec in specs.items():
                if self._catalog.held(key) != spec:
                    changed |= self._catalog.put(key, spec)
            for prompt_id in sorted(changed):
                self._changed.put_nowait(prompt_id)
            return changed

    async def fetch(self, prompt_id: str, version: str | None = None) -> PromptSpec | None:
        """Read the directory (when changed) and answer from it."""
        await self._refresh()
        return self._catalog.get(prompt_id, version)

    async def top(self, count: int) -> list[str]:
        """The first ``count`` ids, by file name."""
        await self._refresh()
        return self._catalog.ids()[:count]

    async def changes(self) -> AsyncIterator[str]:
        """Poll the directory and yield the ids that changed (however the change was noticed)."""
        while True:
            await self._refresh()
            while not self._changed.empty():
                yield self._changed.get_nowait()
            await asyncio.sleep(self.poll_interval)

    async def close(self) -> None:
        """Nothing to release: reads are one-off."""
