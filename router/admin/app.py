"""The admin API as a FastAPI application, served on its own listener (never the public port).

Handlers are thin: FastAPI parses the path and body into pydantic models, `AdminService` does the
work, and every failure answers in the OpenAI error shape the router uses, ``{"error": {...}}``.
Every route needs an admin credential (router/admin/auth.py), except the audit export, which also
accepts an ``audit:read`` credential and keeps it to its own tenant's records. When an audit log is
given, every change (PUT, POST, DELETE) and every audit export is itself recorded in it.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from inferflux.crds.policy import KEY_ID, TenantPolicy
from inferflux.crds.tenant import TENANT_NAME, Scope
from inferflux.router.admin.auth import AdminAuth, Caller, Verdict
from inferflux.router.admin.console import ConsoleSources, add_console
from inferflux.router.admin.models import (
    Deleted,
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyRotate,
    KeyView,
    PolicySummary,
    Resealed,
    SecretList,
    SecretPut,
    SecretView,
    TenantBody,
    TenantList,
    TenantUsage,
)
from inferflux.router.admin.service import AdminError, AdminService
from inferflux.router.audit import export
from inferflux.router.audit.log import AuditError, AuditLog
from inferflux.router.audit.records import AdminRecord
from inferflux.router.policy.secrets import SECRET_NAME

log = logging.getLogger("inferflux.router.admin")
PREFIX = "/admin/v1"
AUDIT_PATH = f"{PREFIX}/audit"
# Routes that accept a scope besides admin; every other route needs admin.
_ACCEPTED = {AUDIT_PATH: frozenset({Scope.AUDIT_READ})}
_ADMIN_ONLY = frozenset({Scope.ADMIN})
TenantName = Annotated[str, Path(pattern=TENANT_NAME, max_length=63)]
KeyId = Annotated[str, Path(pattern=KEY_ID)]
SecretName = Annotated[str, Path(pattern=SECRET_NAME)]

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    503: "service_unavailable_error",
}
_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": description}
    for status, description in (
        (400, "Invalid request (OpenAI error shape)"),
        (401, "Missing or invalid admin credential"),
        (403, "Credential without the admin scope"),
    )
}


def error_response(
    status: int, code: str, message: str, param: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The OpenAI error shape the router answers with, for the admin listener."""
    kind = _TYPES.get(status, "api_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_message(error: RequestValidationError) -> tuple[str, str | None]:
    first = error.errors()[0]
    where = [str(part) for part in first.get("loc", ()) if part not in ("body", "path", "query")]
    param = ".".join(where) or None
    return (f"invalid {param}: {first.get('msg', 'invalid')}" if param else str(first.get("msg"))), param


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    """A time without a zone is taken as UTC (audit records are in UTC)."""
    return moment.replace(tzinfo=dt.UTC) if moment is not None and moment.tzinfo is None else moment


def _concerned_tenant(request: Request) -> str | None:
    path = request.url.path
    if path == AUDIT_PATH:
        return (
            request.query_params.get("tenant")
            or getattr(request.state, "caller", Caller(Verdict.INVALID)).tenant
        )
    parts = path.removeprefix(f"{PREFIX}/").split("/")
    return parts[1] if len(parts) > 1 and parts[0] == "tenants" else None


def create_app(
    service: AdminService,
    auth: AdminAuth,
    audit_dir: FilePath | None = None,
    audit_log: AuditLog | None = None,
    console: ConsoleSources | None = None,
) -> FastAPI:
    """The admin application over ``service``, guarded by ``auth``.

    ``audit_dir`` enables the audit export; ``audit_log`` records admin actions; ``console`` serves
    the admin console (router/admin/console.py) and its live routes.
    """

    async def admin(request: Request) -> None:
        route = request.scope.get("route")
        accepted = _ACCEPTED.get(getattr(route, "path", ""), _ADMIN_ONLY)
        caller = auth.caller(request.headers.get("authorization"), accepted)
        request.state.caller = caller
        if caller.verdict is Verdict.INVALID:
            raise AdminError(401, "invalid_token", "a valid admin credential is required")
        if caller.verdict is Verdict.INSUFFICIENT:
            needed = " or ".join(sorted(accepted | _ADMIN_ONLY))
            raise AdminError(403, "insufficient_scope", f"this credential lacks the {needed} scope")

    app = FastAPI(
        title="InferFlux admin API",
        version="1",
        description="Tenants, API keys and tenant secrets. Served on the admin listener "
        "(INFERFLUX_ADMIN_HOST:INFERFLUX_ADMIN_PORT), never on the public port. Every route needs "
        "`Authorization: Bearer <admin token or API key with the admin scope>`.",
        dependencies=[Depends(admin)],
        responses=_ERROR_RESPONSES,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # the document is docs/admin-openapi.yaml; no unauthenticated route here
    )

    if audit_log is not None:

        @app.middleware("http")
        async def _record(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
            response = await call_next(request)
            if request.method != "GET" or request.url.path == AUDIT_PATH:
                caller = getattr(request.state, "caller", None)
                record = AdminRecord(
                    time=dt.datetime.now(dt.UTC),
                    request_id=request.headers.get("x-request-id", "")[:128] or secrets.token_hex(16),
                    actor=caller.actor if caller is not None and caller.actor else "unauthenticated",
                    actor_tenant=caller.tenant if caller is not None else None,
                    method=request.method,
                    path=request.url.path,
                    tenant=_concerned_tenant(request),
                    status=response.status_code,
                )
                try:
                    audit_log.append(record)
                except AuditError as error:  # the change is done; say loudly that it went unrecorded
                    log.error("admin action not recorded in the audit log: %s", error)
            return response

    @app.exception_handler(AdminError)
    async def _admin_error(request: Request, error: AdminError) -> JSONResponse:
        headers = None
        if error.status == 401:
            headers = {"www-authenticate": 'Bearer error="invalid_token"'}
        elif error.status == 403:
            headers = {"www-authenticate": 'Bearer error="insufficient_scope"'}
        return error_response(error.status, error.code, error.message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(error)
        return error_response(400, "invalid_request_error", message, param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if error.status_code == 404 else "invalid_request_error"
        return error_response(error.status_code, code, str(error.detail))

    @app.get(f"{PREFIX}/policy", tags=["policy"])
    async def policy_summary() -> PolicySummary:
        """The policy this replica enforces: generation and counts."""
        return service.summary()

    @app.get(f"{PREFIX}/tenants", tags=["tenants"])
    async def list_tenants() -> TenantList:
        """Every tenant; those with ``source: resource`` come from Tenant resources and are read-only."""
        return TenantList(data=service.tenants())

    @app.get(f"{PREFIX}/tenants/{{name}}", tags=["tenants"])
    async def get_tenant(name: TenantName) -> TenantPolicy:
        """One tenant."""
        return service.tenant(name)

    @app.get(
        f"{PREFIX}/tenants/{{name}}/usage",
        tags=["tenants"],
        responses={
            404: {"description": "No such tenant"},
            503: {"description": "The budget ledger (Redis) cannot be read now"},
        },
    )
    async def tenant_usage(name: TenantName) -> TenantUsage:
        """Spend per budget window (spent, reserved, limit, in the pricing file's currency) and
        requests and tokens per minute left, read without consuming anything; ``budgets: off`` when
        this router keeps no ledger."""
        return await service.usage(name)

    @app.put(f"{PREFIX}/tenants/{{name}}", tags=["tenants"])
    async def put_tenant(name: TenantName, body: TenantBody) -> TenantPolicy:
        """Create or replace a tenant; 409 when a Tenant resource declares it."""
        return await service.put_tenant(name, body)

    @app.delete(f"{PREFIX}/tenants/{{name}}", tags=["tenants"])
    async def delete_tenant(name: TenantName) -> Deleted:
        """Delete a tenant and revoke its keys; 409 when a Tenant resource declares it."""
        await service.delete_tenant(name)
        return Deleted(id=name)

    @app.post(f"{PREFIX}/tenants/{{name}}/keys", tags=["keys"], status_code=201)
    async def create_key(name: TenantName, body: KeyCreate) -> KeyCreated:
        """A new API key for the tenant; the key is in this reply only."""
        return await service.create_key(name, body)

    @app.get(f"{PREFIX}/tenants/{{name}}/keys", tags=["keys"])
    async def list_keys(name: TenantName) -> KeyList:
        """The tenant's keys: id, last four characters and dates, never the key or its digest."""
        return KeyList(data=service.keys(name))

    @app.get(f"{PREFIX}/keys/{{key_id}}", tags=["keys"])
    async def get_key(key_id: KeyId) -> KeyView:
        """One key, as this replica enforces it."""
        return service.key(key_id)

    @app.post(f"{PREFIX}/keys/{{key_id}}/revoke", tags=["keys"])
    async def revoke_key(key_id: KeyId) -> KeyView:
        """Revoke a key now (revoking twice keeps the first time)."""
        return await service.revoke_key(key_id)

    @app.post(f"{PREFIX}/keys/{{key_id}}/rotate", tags=["keys"], status_code=201)
    async def rotate_key(key_id: KeyId, body: KeyRotate | None = None) -> KeyCreated:
        """A new key with the same limits; the old one expires after the overlap."""
        return await service.rotate_key(key_id, (body or KeyRotate()).overlap_seconds)

    @app.put(f"{PREFIX}/tenants/{{name}}/secrets/{{secret}}", tags=["secrets"])
    async def put_secret(name: TenantName, secret: SecretName, body: SecretPut) -> SecretView:
        """Store a tenant secret, encrypted; its value is never returned."""
        return await service.put_secret(name, secret, body.value)

    @app.get(f"{PREFIX}/tenants/{{name}}/secrets", tags=["secrets"])
    async def list_secrets(name: TenantName) -> SecretList:
        """The tenant's secret names and key versions, never their values."""
        return SecretList(data=await service.secrets(name))

    @app.delete(f"{PREFIX}/tenants/{{name}}/secrets/{{secret}}", tags=["secrets"])
    async def delete_secret(name: TenantName, secret: SecretName) -> Deleted:
        """Delete a tenant secret."""
        await service.delete_secret(name, secret)
        return Deleted(id=f"{name}/{secret}")

    @app.post(f"{PREFIX}/secrets/reencrypt", tags=["secrets"])
    async def reencrypt_secrets() -> Resealed:
        """Re-encrypt every secret sealed with an older key version under the current one."""
        return await service.reseal_secrets()

    @app.get(
        AUDIT_PATH,
        tags=["audit"],
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "Audit records, one JSON object per line, exactly as stored",
                "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
            },
            404: {"description": "The audit log is not enabled (INFERFLUX_AUDIT_DIR)"},
        },
    )
    async def export_audit(
        request: Request,
        tenant: Annotated[str | None, Query(pattern=TENANT_NAME, max_length=63)] = None,
        since: Annotated[dt.datetime | None, Query(description="RFC 3339; records at or after")] = None,
        until: Annotated[dt.datetime | None, Query(description="RFC 3339; records before")] = None,
    ) -> StreamingResponse:
        """Stream audit records as NDJSON. Scope ``audit:read`` reads its own tenant's records only;
        ``admin`` reads any tenant's, or every record (checkpoints included) without ``tenant``."""
        caller: Caller = request.state.caller
        if not caller.admin:
            if tenant is not None and tenant != caller.tenant:
                raise AdminError(
                    403, "insufficient_scope", "this credential reads only its own tenant's records"
                )
            tenant = caller.tenant
        if audit_dir is None:
            raise AdminError(404, "audit_disabled", "the audit log is not enabled on this router")
        query = export.Query(tenant, _utc(since), _utc(until))
        return StreamingResponse(export.export(audit_dir, query), media_type="application/x-ndjson")

    if console is not None:
        add_console(app, PREFIX, console)
    return app
