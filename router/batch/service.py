"""The Batch API's operations, independent of HTTP: upload and read files, create, read, list, cancel.

Every operation takes the caller's tenant and sees only that tenant's files and batches: another
tenant's id answers 404, exactly like an id that does not exist. Failures raise `UpstreamError`,
which the router answers in OpenAI's error shape.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inferflux.router.batch.files import FileMeta, FileStore, new_file_id, now_seconds
from inferflux.router.batch.metrics import BatchMetrics
from inferflux.router.batch.queue import BatchQueue, QueueFull
from inferflux.router.batch.records import Owner, document, failed_record, new_batch_id, new_record
from inferflux.router.batch.validation import FileUnusable, Limits, validate
from inferflux.router.errors import ErrorCode, UpstreamError

WINDOW_SECONDS = 24 * 3600  # the only completion window OpenAI offers, "24h"


class BatchCreate(BaseModel):
    """The body of ``POST /v1/batches``."""

    model_config = ConfigDict(extra="ignore")

    input_file_id: str = Field(min_length=1, max_length=80)
    endpoint: Literal["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]
    completion_window: Literal["24h"]
    metadata: dict[str, str] | None = Field(default=None, max_length=16)


def parse_create(document: Any) -> BatchCreate:
    """``document`` as a `BatchCreate`, or a 400 naming the first bad field."""
    try:
        return BatchCreate.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise UpstreamError(ErrorCode.BAD_REQUEST, f"{field}: {first['msg']}", param=field) from None


def not_found(kind: str, ident: str) -> UpstreamError:
    return UpstreamError(ErrorCode.NOT_FOUND, f"no {kind} {ident!r}")


@dataclass
class BatchService:
    """Files on ``files``, batches and tasks on ``queue``; ``models`` lists what the router serves."""

    queue: BatchQueue
    files: FileStore
    models: Callable[[], Collection[str]]
    metrics: BatchMetrics
    limits: Limits = field(default_factory=Limits)
    queued_limit: int = 0  # per tenant; 0: none
    retention_seconds: int = 30 * 86400

    async def upload(self, tenant: str, filename: str, purpose: str, content: bytes) -> dict[str, Any]:
        """Store an input file (``purpose`` must be ``batch``); its ``FileObject``."""
        if purpose != "batch":
            raise UpstreamError(ErrorCode.BAD_REQUEST, "purpose must be 'batch'", param="purpose")
        if len(content) > self.limits.max_bytes:
            raise UpstreamError(ErrorCode.BAD_REQUEST, f"file over {self.limits.max_bytes} bytes", status=413)
        if not content.strip():
            raise UpstreamError(ErrorCode.BAD_REQUEST, "the file is empty", param="file")
        now = now_seconds()
        name = filename[:255] or "input.jsonl"
        meta = FileMeta(new_file_id(), tenant, len(content), now, name, purpose, now + self.retention_seconds)
        await self.files.put(meta, content)
        return meta.document()

    async def file(self, tenant: str, file_id: str) -> dict[str, Any]:
        meta = await self.files.meta(tenant, file_id)
        if meta is None:
            raise not_found("file", file_id)
        return meta.document()

    async def content(self, tenant: str, file_id: str) -> bytes:
        found = await self.files.content(tenant, file_id)
        if found is None:
            raise not_found("file", file_id)
        return found

    async def delete_file(self, tenant: str, file_id: str) -> dict[str, Any]:
        if not await self.files.delete(tenant, file_id):
            raise not_found("file", file_id)
        return {"id": file_id, "object": "file", "deleted": True}

    async def create(
        self, owner: Owner, request: BatchCreate, allowed: Callable[[str], bool]
    ) -> dict[str, Any]:
        """Validate the input file line by line and start the batch; a file with bad lines gives a
        ``failed`` batch listing them. ``allowed`` says which models the caller may use."""
        content = await self.files.content(owner.tenant, request.input_file_id)
        if content is None:
            raise not_found("file", request.input_file_id)
        served = [name for name in self.models() if allowed(name)]
        try:
            tasks, errors = validate(content, request.endpoint, served, self.limits)
        except FileUnusable as error:
            raise UpstreamError(ErrorCode.BAD_REQUEST, str(error), param="input_file_id") from None
        now = now_seconds()
        batch_id = new_batch_id()
        record = new_record(
            batch_id,
            owner,
            request.endpoint,
            request.input_file_id,
            request.metadata,
            now,
            WINDOW_SECONDS,
            len(tasks),
        )
        if errors:
            record = failed_record({**record, "total": "0"}, [error.document() for error in errors], now)
            tasks = []
        try:
            await self.queue.create(record, tasks, request.endpoint, self.queued_limit)
        except QueueFull as full:
            raise UpstreamError(ErrorCode.RATE_LIMITED, f"batch refused: {full}", retry_after=60) from None
        for task in tasks:
            self.metrics.queued.labels(owner.tenant, task.model).inc()
        return document(record)

    async def _owned(self, tenant: str, batch_id: str) -> dict[str, str]:
        record = await self.queue.record(batch_id) if batch_id.startswith("batch_") else None
        if record is None or record["tenant"] != tenant:
            raise not_found("batch", batch_id)
        return record

    async def batch(self, tenant: str, batch_id: str) -> dict[str, Any]:
        return document(await self._owned(tenant, batch_id))

    async def cancel(self, tenant: str, batch_id: str) -> dict[str, Any]:
        """Stop the batch: no task of it starts from now on; it ends ``cancelled`` with what finished."""
        await self._owned(tenant, batch_id)
        await self.queue.cancel(batch_id, now_seconds())
        return document(await self._owned(tenant, batch_id))

    async def list(self, tenant: str, after: str | None, limit: int) -> dict[str, Any]:
        """A page of the tenant's batches, newest first (OpenAI's cursor list)."""
        records, more = await self.queue.batches(tenant, after, limit)
        data = [document(record) for record in records]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": more,
        }
