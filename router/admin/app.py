"""The admin API as a FastAPI application, served on its own listener (never the public port).

Handlers are thin: FastAPI parses the path and body into pydantic models, `AdminService` does the
work, and every failure answers in the OpenAI error shape the router uses, ``{"error": {...}}``.
Every route needs an admin credential (router/admin/auth.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from inferflux.crds.policy import KEY_ID, TenantPolicy
from inferflux.crds.tenant import TENANT_NAME
from inferflux.router.admin.auth import AdminAuth, Verdict
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
)
from inferflux.router.admin.service import AdminError, AdminService
from inferflux.router.policy.secrets import SECRET_NAME

PREFIX = "/admin/v1"
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


def create_app(service: AdminService, auth: AdminAuth) -> FastAPI:
    """The admin application over ``service``, guarded by ``auth``."""

    async def admin(request: Request) -> None:
        verdict = auth.check(request.headers.get("authorization"))
        if verdict is Verdict.INVALID:
            raise AdminError(401, "invalid_token", "a valid admin credential is required")
        if verdict is Verdict.INSUFFICIENT:
            raise AdminError(403, "insufficient_scope", "this credential lacks the admin scope")

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

    return app
