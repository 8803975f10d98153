"""The Batch API and its workers, built from the router's settings around a `Router`.

`batch_for` returns None unless ``INFERFLUX_BATCH_DIR`` is set. The routes are mounted on the
router's public port; the worker (unless ``INFERFLUX_BATCH_WORKERS=0``) runs in the same process
and sends tasks through that router's request path. ``python -m inferflux.router.batch`` runs the
same worker without the public port (a separate Deployment of the same image).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from inferflux.router.app import Router
from inferflux.router.batch.api import BatchRoutes
from inferflux.router.batch.executor import RouterExecutor
from inferflux.router.batch.files import DirectoryFileStore
from inferflux.router.batch.metrics import BatchMetrics
from inferflux.router.batch.queue import BatchQueue
from inferflux.router.batch.service import BatchService
from inferflux.router.batch.validation import Limits
from inferflux.router.batch.worker import Worker, WorkerSettings
from inferflux.router.settings import Settings

CLOSE_SECONDS = 5.0


def worker_settings(settings: Settings) -> WorkerSettings:
    """The worker's part of the router settings."""
    return WorkerSettings(
        concurrency=settings.batch_workers,
        visibility_seconds=settings.batch_visibility_seconds,
        max_attempts=settings.batch_max_attempts,
        backoff_seconds=settings.batch_backoff_seconds,
        tenant_concurrency=settings.batch_tenant_concurrency,
        retention_seconds=settings.batch_retention_seconds,
    )


@dataclass
class BatchSystem:
    """The batch queue, its files, the API service, and this process's worker (if any)."""

    queue: BatchQueue
    service: BatchService
    routes: BatchRoutes
    worker: Worker | None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        """Start the worker in the background (on the running loop)."""
        if self.worker is not None:
            self.tasks.append(asyncio.ensure_future(self.worker.run()))

    async def close(self, grace_seconds: float = 30.0) -> None:
        """Stop the worker (running tasks get ``grace_seconds``), then the Redis connection."""
        if self.worker is not None:
            await self.worker.stop(grace_seconds)
        for task in self.tasks:
            task.cancel()
        if self.tasks:  # bounded: shutting down must not hang on a connection that will not close
            await asyncio.wait(self.tasks, timeout=CLOSE_SECONDS)
        with contextlib.suppress(TimeoutError, OSError):
            await asyncio.wait_for(self.queue.close(), CLOSE_SECONDS)


def batch_for(settings: Settings, router: Router, workers: bool = True) -> BatchSystem | None:
    """The batch system the settings describe, its routes mounted on ``router``; None when off."""
    if not settings.batch_dir:
        return None
    queue = BatchQueue.from_url(settings.redis_url)
    files = DirectoryFileStore(Path(settings.batch_dir))
    metrics = BatchMetrics(router.metrics.registry)
    service = BatchService(
        queue,
        files,
        lambda: router.holder.table.models.keys(),
        metrics,
        Limits(settings.batch_max_bytes, settings.batch_max_lines),
        settings.batch_tenant_queued,
        settings.batch_retention_seconds,
    )
    routes = BatchRoutes(service)
    router.mount(routes.handles, routes)
    worker = None
    if workers and settings.batch_workers > 0:
        executor = RouterExecutor(router.openai, router.policy, router.auth)
        worker = Worker(queue, files, executor, metrics, worker_settings(settings))
    return BatchSystem(queue, service, routes, worker)
