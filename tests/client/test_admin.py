"""The admin clients against the real admin application served on a port (policy kept in memory)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from inferflux.client import (
    AdminClient,
    AsyncAdminClient,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
)
from inferflux.crds.policy import PolicySnapshot, TenantPolicy
from inferflux.router.admin.app import create_app
from inferflux.router.admin.auth import AdminAuth
from inferflux.router.admin.service import AdminService
from inferflux.router.audit import signing
from inferflux.router.audit.log import AuditLog
from inferflux.router.identity.api_keys import KeyHasher
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.policy.secrets import Keyring
from inferflux.router.policy.store import MemoryPolicyStore

TOKEN = "bootstrap-admin-token-0123456789"


@dataclass
class Admin:
    url: str
    audit: AuditLog | None


@pytest.fixture
async def serve_admin(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Admin]]]:
    """``await serve_admin(audit=False)``: the admin application on a free port, with a real audit log
    (a signing key pair on disk) when ``audit``."""
    running: list[tuple[uvicorn.Server, asyncio.Task[None], AuditLog | None]] = []

    async def serve(audit: bool = False) -> Admin:
        holder = PolicyHolder()
        holder.set_snapshot(PolicySnapshot(tenants={"from-git": TenantPolicy(name="from-git")}))
        store = MemoryPolicyStore(holder)
        await store.load()
        hasher = KeyHasher(os.urandom(32))
        service = AdminService(holder, store, hasher, Keyring("k1", {"k1": os.urandom(32)}))
        log, directory = None, tmp_path / "audit"
        if audit:
            signing.generate(tmp_path / "audit.pem", tmp_path / "audit.pub")
            log = AuditLog(directory, "router-0", signing.Signer.from_file(tmp_path / "audit.pem"))
            log.open()
            log.start()
        app = create_app(service, AdminAuth(holder, hasher, TOKEN), directory if audit else None, log)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, access_log=False, log_level="warning", lifespan="off"))
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        running.append((server, task, log))
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no startup event
            await asyncio.sleep(0.01)
        return Admin(f"http://127.0.0.1:{sock.getsockname()[1]}", log)

    yield serve
    for server, task, log in running:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        if log is not None:
            await log.close()


@pytest.fixture
async def admin_url(serve_admin: Callable[..., Awaitable[Admin]]) -> str:
    return (await serve_admin()).url


async def test_tenants_and_a_key_lifecycle(admin_url: str) -> None:
    admin = AsyncAdminClient(admin_url, TOKEN)
    tenant = await admin.put_tenant("ops", {"displayName": "Operations", "scopes": ["admin", "inference"]})
    assert tenant["name"] == "ops"
    assert {t["name"] for t in await admin.tenants()} == {"ops", "from-git"}
    created = await admin.create_key("ops", name="ci", scopes=["admin"])
    key, record = created["key"], created["record"]
    assert record["last4"] == key[-4:]
    listed = await admin.keys("ops")
    assert [k["id"] for k in listed] == [record["id"]]
    assert key not in str(listed)  # the secret is in the creating answer only

    as_key = AsyncAdminClient(admin_url, key)  # the new key carries the admin scope
    assert (await as_key.policy())["activeKeys"] == 1
    revoked = await admin.revoke_key(record["id"])
    assert revoked["revokedAt"] is not None
    with pytest.raises(AuthenticationError) as refused:
        await as_key.policy()
    assert refused.value.status == 401
    assert refused.value.code == "invalid_token"
    await as_key.aclose()

    rotated = await admin.rotate_key((await admin.create_key("ops"))["record"]["id"], overlap_seconds=60)
    assert rotated["previous"]["replacedBy"] == rotated["record"]["id"]
    deleted = await admin.delete_tenant("ops")
    assert deleted == {"id": "ops", "deleted": True}
    await admin.aclose()


async def test_admin_refusals_are_typed(admin_url: str) -> None:
    def refusals() -> list[type[Exception]]:
        seen: list[type[Exception]] = []
        admin = AdminClient(admin_url, TOKEN)
        narrow_tenant = admin.put_tenant("users", {"scopes": ["inference"]})
        assert narrow_tenant["scopes"] == ["inference"]
        user_key = admin.create_key("users")["key"]
        attempts = [
            lambda: admin.tenant("nobody"),
            lambda: admin.put_tenant("from-git", {}),
            lambda: admin.create_key("users", scopes=["admin"]),
            lambda: AdminClient(admin_url, "wrong-token").tenants(),
            lambda: AdminClient(admin_url, user_key).tenants(),
        ]
        for attempt in attempts:
            try:
                attempt()
            except Exception as error:
                seen.append(type(error))
        admin.close()
        return seen

    assert await asyncio.to_thread(refusals) == [
        NotFoundError,
        ConflictError,
        BadRequestError,
        AuthenticationError,
        PermissionDeniedError,
    ]


async def test_the_audit_export_says_when_the_audit_log_is_off(admin_url: str) -> None:
    admin = AsyncAdminClient(admin_url, TOKEN)
    with pytest.raises(NotFoundError) as disabled:
        [record async for record in admin.audit(tenant="ops")]
    assert disabled.value.code == "audit_disabled"
    await admin.aclose()


async def test_the_audit_export_yields_the_admin_actions(
    serve_admin: Callable[..., Awaitable[Admin]],
) -> None:
    served = await serve_admin(audit=True)
    assert served.audit is not None
    admin = AsyncAdminClient(served.url, TOKEN)
    await admin.put_tenant("ops", {})
    await admin.create_key("ops", name="ci")
    await admin.put_tenant("other", {})
    await served.audit.flush()
    records = [record async for record in admin.audit(tenant="ops")]
    assert all(r["tenant"] == "ops" for r in records)
    changes = [r for r in records if r["method"] != "GET"]  # exports are recorded too, as they happen
    assert [(r["method"], r["path"]) for r in changes] == [
        ("PUT", "/admin/v1/tenants/ops"),
        ("POST", "/admin/v1/tenants/ops/keys"),
    ]
    sync_records = await asyncio.to_thread(lambda: list(AdminClient(served.url, TOKEN).audit(tenant="ops")))
    assert [r for r in sync_records if r["method"] != "GET"] == changes
    await admin.aclose()
