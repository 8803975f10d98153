"""The Batch API's HTTP routes, in OpenAI's shapes, as one raw-ASGI handler.

``/v1/files`` (POST multipart upload), ``/v1/files/{id}`` (GET, DELETE), ``/v1/files/{id}/content``
(GET), ``/v1/batches`` (POST, GET with ``after`` and ``limit``), ``/v1/batches/{id}`` (GET) and
``/v1/batches/{id}/cancel`` (POST). The router's identity stage has already required the ``batch``
scope (router/identity/scopes.py); handlers parse, find the caller's tenant, and call `BatchService`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from starlette.datastructures import UploadFile
from starlette.requests import Request

from inferflux.router.asgi import (
    Message,
    Receive,
    Scope,
    Send,
    header,
    parse_json,
    read_body,
    send_bytes,
    send_json,
)
from inferflux.router.batch.files import ANONYMOUS
from inferflux.router.batch.records import Owner
from inferflux.router.batch.service import BatchService, parse_create
from inferflux.router.errors import ErrorCode, UpstreamError
from inferflux.router.identity.authenticate import principal_of

PREFIXES = ("/v1/files", "/v1/batches")
MULTIPART_SLACK = 64 * 1024  # the form's boundaries and other fields around the file
FORM_EXPECTED = "expected multipart/form-data with a file and a purpose"
_SUFFIX = {("files", 3): "content", ("batches", 3): "cancel"}


def owner_of(scope: Scope) -> Owner:
    """The caller as a batch owner; one anonymous tenant when authentication is off."""
    principal = principal_of(scope)
    if principal is None:
        return Owner(ANONYMOUS)
    return Owner(principal.tenant, principal.kind, principal.subject)


def _allowed(scope: Scope) -> Callable[[str], bool]:
    principal = principal_of(scope)
    return (lambda model: True) if principal is None else principal.may_use


def _query(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"").decode("latin-1")
    return {key: values[-1] for key, values in parse_qs(raw).items()}


def _limit(value: str | None) -> int:
    if value is None:
        return 20
    if not value.isdigit() or not 1 <= int(value) <= 100:
        raise UpstreamError(ErrorCode.BAD_REQUEST, "limit must be between 1 and 100", param="limit")
    return int(value)


class BatchRoutes:
    """``await routes(scope, receive, send)`` for any path under `PREFIXES`."""

    def __init__(self, service: BatchService) -> None:
        self.service = service

    def handles(self, path: str) -> bool:
        return any(path == prefix or path.startswith(prefix + "/") for prefix in PREFIXES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, parts = scope["method"], scope["path"].strip("/").split("/")[1:]
        tenant = owner_of(scope).tenant
        handler = self._route(method, parts)
        if handler is None:
            raise UpstreamError(ErrorCode.NOT_FOUND, f"no route {method} {scope['path']}")
        await handler(scope, receive, send, tenant, parts)

    def _route(self, method: str, parts: list[str]) -> Callable[..., Awaitable[None]] | None:
        table: dict[tuple[str, str, int], Callable[..., Awaitable[None]]] = {
            ("POST", "files", 1): self.upload,
            ("GET", "files", 2): self.file,
            ("DELETE", "files", 2): self.delete_file,
            ("GET", "files", 3): self.content,
            ("POST", "batches", 1): self.create,
            ("GET", "batches", 1): self.list_batches,
            ("GET", "batches", 2): self.batch,
            ("POST", "batches", 3): self.cancel,
        }
        handler = table.get((method, parts[0], len(parts)))
        suffix = _SUFFIX.get((parts[0], len(parts)))
        if handler is None or (suffix is not None and parts[2] != suffix):
            return None
        return handler

    async def upload(self, scope: Scope, receive: Receive, send: Send, tenant: str, parts: list[str]) -> None:
        if not (header(scope, b"content-type") or b"").startswith(b"multipart/form-data"):
            raise UpstreamError(ErrorCode.BAD_REQUEST, FORM_EXPECTED)
        raw = await read_body(receive, self.service.limits.max_bytes + MULTIPART_SLACK)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        try:
            form = await Request(scope, replay).form(max_files=1, max_fields=8)
        except Exception:  # python-multipart's errors, a missing boundary, a non-form body
            raise UpstreamError(
                ErrorCode.BAD_REQUEST, "expected multipart/form-data with file and purpose"
            ) from None
        try:
            upload, purpose = form.get("file"), form.get("purpose")
            if not isinstance(upload, UploadFile):
                raise UpstreamError(ErrorCode.BAD_REQUEST, "the form has no file", param="file")
            content = await upload.read()
            document = await self.service.upload(
                tenant, upload.filename or "", purpose if isinstance(purpose, str) else "", content
            )
        finally:
            await form.close()
        await send_json(send, 200, document)

    async def file(self, scope: Scope, receive: Receive, send: Send, tenant: str, parts: list[str]) -> None:
        await send_json(send, 200, await self.service.file(tenant, parts[1]))

    async def delete_file(
        self, scope: Scope, receive: Receive, send: Send, tenant: str, parts: list[str]
    ) -> None:
        await send_json(send, 200, await self.service.delete_file(tenant, parts[1]))

    async def content(
        self, scope: Scope, receive: Receive, send: Send, tenant: str, parts: list[str]
    ) -> None:
        body = await self.service.content(tenant, parts[1])
        await send_bytes(send, 200, body, [(b"content-type", b"application/jsonl")])

    async def create(self, scope: Scope, receive: Receive, send: Send, tenant: str, parts: list[str]) -> None:
        request = parse_create(parse_json(await read_body(receive)))
        await send_json(send, 200, await self.service.create(owner_of(scope), request, _allowed(scope)))

    async def list_batches(
        self, scope: Scope, receive: Receive, send: Send, tenant: str, parts: list[str]
    ) -> None:
        query = _query(scope)
        page = await self.service.list(tenant, query.get("after"), _limit(query.get("limit")))
        await send_json(send, 200, page)

    async def batch(self, scope: Scope, receive: Receive, send: Send, tenant: str, parts: list[str]) -> None:
        await send_json(send, 200, await self.service.batch(tenant, parts[1]))

    async def cancel(self, scope: Scope, receive: Receive, send: Send, tenant: str, parts: list[str]) -> None:
        await send_json(send, 200, await self.service.cancel(tenant, parts[1]))
