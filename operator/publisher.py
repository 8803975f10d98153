"""Publish documents the operator derives from its cache, whenever their content changes.

Watch events call ``request()``; one background task coalesces the bursts (a rollout of 200 models
is a few writes, not thousands), rebuilds the documents from the cache and applies each only when
its content changed since the last write. A failed write is retried with backoff. The routing table
and the policy snapshot are each published by one of these.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from typing import Any

from inferflux.operator.storage import Storage
from inferflux.operator.workqueue import backoff

log = logging.getLogger(__name__)

COALESCE_SECONDS = 0.2


class Publisher(abc.ABC):
    """Keeps some objects equal to what ``documents()`` builds from the cache."""

    name = "documents"

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._wanted = asyncio.Event()
        self._published: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None

    def request(self) -> None:
        """Ask for a rebuild soon; many requests in a burst give one rebuild."""
        self._wanted.set()

    @abc.abstractmethod
    def documents(self) -> list[dict[str, Any]]:
        """The objects to publish, from the current cache."""

    def ready(self) -> bool:
        """Whether the cache holds enough to publish (a subclass may wait for its first list)."""
        return True

    def published(self, documents: list[dict[str, Any]]) -> None:
        """Called after every document of a rebuild is on the server (whether or not it was written).

        A hook for subclasses that report on what they published; by default there is nothing to do.
        """
        return None

    async def publish(self) -> int:
        """Apply the documents that changed since the last write; returns how many were written."""
        if not self.ready():
            return 0
        documents = self.documents()
        written = 0
        for document in documents:
            name = f"{document['kind']}/{document['metadata']['name']}"
            if self._published.get(name) != document:
                await self._storage.apply(document)
                self._published[name] = document
                written += 1
        self.published(documents)
        return written

    async def _loop(self) -> None:
        failures = 0
        while True:
            await self._wanted.wait()
            await asyncio.sleep(COALESCE_SECONDS)
            self._wanted.clear()
            try:
                await self.publish()
                failures = 0
            except Exception as error:
                failures += 1
                log.warning("publishing the %s failed (%s); retrying", self.name, error)
                await asyncio.sleep(backoff(failures))
                self._wanted.set()

    def start(self) -> None:
        """Start the publishing task."""
        self._task = asyncio.create_task(self._loop(), name=f"{self.name}-publisher")
        self.request()

    async def stop(self) -> None:
        """Stop the publishing task."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
