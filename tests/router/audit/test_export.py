"""The audit export on the admin API (real files, the real admin app): scope audit:read, tenant
isolation, time ranges, and admin actions recorded in the chain."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from inferflux.router.admin.app import create_app
from inferflux.router.admin.auth import AdminAuth
from inferflux.router.admin.service import AdminService
from inferflux.router.audit.log import AuditLog, Options
from inferflux.router.identity.api_keys import KeyHasher
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.policy.store import MemoryPolicyStore
from tests.router.audit.conftest import T0, Keys, request

TOKEN = "bootstrap-admin-token-0123456789"
ADMIN = {"authorization": f"Bearer {TOKEN}"}


@dataclass
class Setup:
    client: httpx.AsyncClient
    audit: AuditLog
    keys: dict[str, str]  # name -> API key


@pytest.fixture
async def setup(tmp_path: Path, keys: Keys) -> AsyncIterator[Setup]:
    holder = PolicyHolder()
    store = MemoryPolicyStore(holder)
    await store.load()
    hasher = KeyHasher(os.urandom(32))
    audit = AuditLog(tmp_path, "router-0", keys.signer(), Options(checkpoint_records=5))
    audit.open()
    audit.start()
    app = create_app(
        AdminService(holder, store, hasher, None), AdminAuth(holder, hasher, TOKEN), tmp_path, audit
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://admin") as client:
        made: dict[str, str] = {}
        for tenant in ("alpha", "beta"):
            await client.put(
                f"/admin/v1/tenants/{tenant}", json={"scopes": ["inference", "audit:read"]}, headers=ADMIN
            )
            made[tenant] = (
                await client.post(f"/admin/v1/tenants/{tenant}/keys", json={}, headers=ADMIN)
            ).json()["key"]
        made["alpha-inference"] = (
            await client.post("/admin/v1/tenants/alpha/keys", json={"scopes": ["inference"]}, headers=ADMIN)
        ).json()["key"]
        for day in range(3):
            for tenant in ("alpha", "beta"):
                audit.append(request(day, tenant, T0 + dt.timedelta(days=day)))
        yield Setup(client, audit, made)
    await audit.close()


def records(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [orjson.loads(line) for line in response.content.splitlines()]


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def test_a_tenant_key_reads_only_its_own_records(setup: Setup) -> None:
    own = records(await setup.client.get("/admin/v1/audit", headers=bearer(setup.keys["alpha"])))
    requests = [entry for entry in own if entry["kind"] == "request"]
    assert len(requests) == 3
    assert {entry["tenant"] for entry in own} == {"alpha"}
    assert not any(entry["kind"] == "checkpoint" for entry in own)
    same = records(
        await setup.client.get("/admin/v1/audit?tenant=alpha", headers=bearer(setup.keys["alpha"]))
    )
    assert same[: len(own)] == own
    assert same[len(own)]["path"] == "/admin/v1/audit"  # the first export is itself on the record


async def test_another_tenants_records_are_refused(setup: Setup) -> None:
    response = await setup.client.get("/admin/v1/audit?tenant=beta", headers=bearer(setup.keys["alpha"]))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert "req-" not in response.text


async def test_a_key_without_audit_read_is_refused(setup: Setup) -> None:
    response = await setup.client.get("/admin/v1/audit", headers=bearer(setup.keys["alpha-inference"]))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == 'Bearer error="insufficient_scope"'
    assert (await setup.client.get("/admin/v1/audit")).status_code == 401
    # audit:read opens the export only, nothing else on the admin API.
    assert (
        await setup.client.get("/admin/v1/tenants", headers=bearer(setup.keys["alpha"]))
    ).status_code == 403


async def test_an_administrator_reads_any_tenant_or_the_whole_chain(setup: Setup) -> None:
    beta = records(await setup.client.get("/admin/v1/audit?tenant=beta", headers=ADMIN))
    assert {entry["tenant"] for entry in beta} == {"beta"}
    everything = records(await setup.client.get("/admin/v1/audit", headers=ADMIN))
    kinds = {entry["kind"] for entry in everything}
    assert {"request", "admin", "checkpoint"} <= kinds
    assert [entry["seq"] for entry in everything] == list(range(len(everything)))


async def test_since_and_until_bound_the_time(setup: Setup) -> None:
    since, until = T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=2)
    found = records(
        await setup.client.get(
            "/admin/v1/audit",
            params={"tenant": "alpha", "since": since.isoformat(), "until": "2026-01-03T00:00:00"},
            headers=ADMIN,
        )
    )
    assert [entry["request_id"] for entry in found] == ["req-1"]  # a zone-less time is UTC
    with_zone = records(
        await setup.client.get(
            "/admin/v1/audit", params={"tenant": "alpha", "until": until.isoformat()}, headers=ADMIN
        )
    )
    assert [entry["request_id"] for entry in with_zone] == ["req-0", "req-1"]
    bad = await setup.client.get("/admin/v1/audit?since=yesterday", headers=ADMIN)
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "since"


async def test_admin_actions_are_recorded_without_bodies(setup: Setup) -> None:
    secret_value = "canary-value-7d1f"
    await setup.client.put("/admin/v1/tenants/gamma", json={"displayName": secret_value}, headers=ADMIN)
    await setup.client.get("/admin/v1/audit?tenant=alpha", headers=bearer(setup.keys["alpha"]))
    await setup.client.delete("/admin/v1/tenants/nobody", headers={"authorization": "Bearer wrong"})
    await setup.audit.flush()
    entries = [
        orjson.loads(line)
        for path in sorted(setup.audit.chain_dir.glob("*.ndjson"))
        for line in path.read_bytes().splitlines()
    ]
    admin = [entry for entry in entries if entry["kind"] == "admin"]
    put = next(entry for entry in admin if entry["path"] == "/admin/v1/tenants/gamma")
    assert (put["actor"], put["method"], put["tenant"], put["status"]) == ("bootstrap", "PUT", "gamma", 200)
    export = next(entry for entry in admin if entry["path"] == "/admin/v1/audit")
    assert export["actor_tenant"] == "alpha"
    assert export["tenant"] == "alpha"
    assert export["actor"] == setup.keys["alpha"].split("_")[1]  # the key id, never the key
    refused = next(entry for entry in admin if entry["method"] == "DELETE")
    assert (refused["actor"], refused["status"]) == ("unauthenticated", 401)
    written = b"".join(path.read_bytes() for path in setup.audit.chain_dir.glob("*.ndjson"))
    assert secret_value.encode() not in written
    for key in setup.keys.values():
        assert key.encode() not in written


async def test_without_an_audit_folder_the_export_says_so(tmp_path: Path) -> None:
    holder = PolicyHolder()
    app = create_app(
        AdminService(holder, MemoryPolicyStore(holder), None, None), AdminAuth(holder, None, TOKEN)
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://admin") as client:
        response = await client.get("/admin/v1/audit", headers=ADMIN)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "audit_disabled"
