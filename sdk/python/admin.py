"""The admin API (router/admin/, its own listener): tenants, API keys and the audit export.

Answers are the JSON documents of docs/admin-openapi.yaml, camelCase as on the wire; failures raise
the typed errors of `inferflux.client.errors`. A new key's secret (``key``) is in the answer of
`create_key` and `rotate_key` only. Each call is described once by `AdminCall` and sent by the sync
`AdminClient` or the asyncio `AsyncAdminClient`. Tenant secrets are not wrapped here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from inferflux.client import http

PREFIX = "/admin/v1"


@dataclass(frozen=True)
class AdminCall:
    """One admin request: method, path under ``/admin/v1``, JSON body and query."""

    method: str
    path: str
    body: Any = None
    query: dict[str, str] = field(default_factory=dict)


def _part(value: str) -> str:
    return quote(value, safe="")


def _key_body(
    name: str, scopes: Sequence[str] | None, models: Sequence[str] | None, expires_at: dt.datetime | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if scopes is not None:
        body["scopes"] = list(scopes)
    if models is not None:
        body["models"] = list(models)
    if expires_at is not None:
        body["expiresAt"] = expires_at.isoformat()
    return body


class AdminCalls:
    """The admin routes as `AdminCall` values (what both clients send)."""

    @staticmethod
    def policy() -> AdminCall:
        return AdminCall("GET", "/policy")

    @staticmethod
    def tenants() -> AdminCall:
        return AdminCall("GET", "/tenants")

    @staticmethod
    def tenant(name: str) -> AdminCall:
        return AdminCall("GET", f"/tenants/{_part(name)}")

    @staticmethod
    def put_tenant(name: str, body: Mapping[str, Any]) -> AdminCall:
        return AdminCall("PUT", f"/tenants/{_part(name)}", dict(body))

    @staticmethod
    def delete_tenant(name: str) -> AdminCall:
        return AdminCall("DELETE", f"/tenants/{_part(name)}")

    @staticmethod
    def create_key(
        tenant: str,
        name: str = "",
        scopes: Sequence[str] | None = None,
        models: Sequence[str] | None = None,
        expires_at: dt.datetime | None = None,
    ) -> AdminCall:
        return AdminCall(
            "POST", f"/tenants/{_part(tenant)}/keys", _key_body(name, scopes, models, expires_at)
        )

    @staticmethod
    def keys(tenant: str) -> AdminCall:
        return AdminCall("GET", f"/tenants/{_part(tenant)}/keys")

    @staticmethod
    def key(key_id: str) -> AdminCall:
        return AdminCall("GET", f"/keys/{_part(key_id)}")

    @staticmethod
    def revoke_key(key_id: str) -> AdminCall:
        return AdminCall("POST", f"/keys/{_part(key_id)}/revoke")

    @staticmethod
    def rotate_key(key_id: str, overlap_seconds: int = 3600) -> AdminCall:
        return AdminCall("POST", f"/keys/{_part(key_id)}/rotate", {"overlapSeconds": overlap_seconds})

    @staticmethod
    def audit(
        tenant: str | None = None, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> AdminCall:
        query = {"tenant": tenant, "since": since and since.isoformat(), "until": until and until.isoformat()}
        return AdminCall("GET", "/audit", query={k: v for k, v in query.items() if v})


def _answer(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise http.api_error(response)
    return response.json()


class AdminClient:
    """The admin API, blocking. ``token``: the admin token or an API key with the ``admin`` scope.

    Every method takes the arguments of the `AdminCalls` method of the same name.
    """

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=base_url + PREFIX, headers=http.headers(token), timeout=timeout)

    def send(self, call: AdminCall) -> Any:
        """Send one call; its JSON answer."""
        return _answer(self.http.request(call.method, call.path, json=call.body, params=call.query))

    def policy(self) -> Any:
        return self.send(AdminCalls.policy())

    def tenants(self) -> list[Any]:
        return list(self.send(AdminCalls.tenants())["data"])

    def tenant(self, name: str) -> Any:
        return self.send(AdminCalls.tenant(name))

    def put_tenant(self, name: str, body: Mapping[str, Any]) -> Any:
        return self.send(AdminCalls.put_tenant(name, body))

    def delete_tenant(self, name: str) -> Any:
        return self.send(AdminCalls.delete_tenant(name))

    def create_key(self, tenant: str, **options: Any) -> Any:
        return self.send(AdminCalls.create_key(tenant, **options))

    def keys(self, tenant: str) -> list[Any]:
        return list(self.send(AdminCalls.keys(tenant))["data"])

    def key(self, key_id: str) -> Any:
        return self.send(AdminCalls.key(key_id))

    def revoke_key(self, key_id: str) -> Any:
        return self.send(AdminCalls.revoke_key(key_id))

    def rotate_key(self, key_id: str, overlap_seconds: int = 3600) -> Any:
        return self.send(AdminCalls.rotate_key(key_id, overlap_seconds))

    def audit(self, **query: Any) -> Iterator[Any]:
        """Audit records (NDJSON), one parsed record at a time."""
        call = AdminCalls.audit(**query)
        with self.http.stream(call.method, call.path, params=call.query) as response:
            if response.status_code >= 400:
                response.read()
                raise http.api_error(response)
            for line in response.iter_lines():
                if line:
                    yield orjson.loads(line)

    def close(self) -> None:
        self.http.close()


class AsyncAdminClient:
    """The admin API for asyncio; the same methods as `AdminClient`, awaited."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url + PREFIX, headers=http.headers(token), timeout=timeout
        )

    async def send(self, call: AdminCall) -> Any:
        """Send one call; its JSON answer."""
        return _answer(await self.http.request(call.method, call.path, json=call.body, params=call.query))

    async def policy(self) -> Any:
        return await self.send(AdminCalls.policy())

    async def tenants(self) -> list[Any]:
        return list((await self.send(AdminCalls.tenants()))["data"])

    async def tenant(self, name: str) -> Any:
        return await self.send(AdminCalls.tenant(name))

    async def put_tenant(self, name: str, body: Mapping[str, Any]) -> Any:
        return await self.send(AdminCalls.put_tenant(name, body))

    async def delete_tenant(self, name: str) -> Any:
        return await self.send(AdminCalls.delete_tenant(name))

    async def create_key(self, tenant: str, **options: Any) -> Any:
        return await self.send(AdminCalls.create_key(tenant, **options))

    async def keys(self, tenant: str) -> list[Any]:
        return list((await self.send(AdminCalls.keys(tenant)))["data"])

    async def key(self, key_id: str) -> Any:
        return await self.send(AdminCalls.key(key_id))

    async def revoke_key(self, key_id: str) -> Any:
        return await self.send(AdminCalls.revoke_key(key_id))

    async def rotate_key(self, key_id: str, overlap_seconds: int = 3600) -> Any:
        return await self.send(AdminCalls.rotate_key(key_id, overlap_seconds))

    async def audit(self, **query: Any) -> AsyncIterator[Any]:
        """Audit records (NDJSON), one parsed record at a time."""
        call = AdminCalls.audit(**query)
        async with self.http.stream(call.method, call.path, params=call.query) as response:
            if response.status_code >= 400:
                await response.aread()
                raise http.api_error(response)
            async for line in response.aiter_lines():
                if line:
                    yield orjson.loads(line)

    async def aclose(self) -> None:
        await self.http.aclose()
