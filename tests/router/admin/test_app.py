"""The admin API over a memory store: auth, tenants, keys, secrets, and the OpenAI error shape."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from inferflux.crds.policy import PolicySnapshot, TenantPolicy
from inferflux.router.admin.app import create_app
from inferflux.router.admin.auth import AdminAuth
from inferflux.router.admin.service import AdminService
from inferflux.router.identity.api_keys import KeyHasher
from inferflux.router.policy.effective import PolicyHolder
from inferflux.router.policy.secrets import Keyring
from inferflux.router.policy.store import MemoryPolicyStore

TOKEN = "bootstrap-admin-token-0123456789"
ADMIN = {"authorization": f"Bearer {TOKEN}"}
KEY_BYTES = {"k1": os.urandom(32)}


@dataclass
class Admin:
    client: httpx.AsyncClient
    holder: PolicyHolder
    store: MemoryPolicyStore
    keyring: Keyring


@pytest.fixture
async def admin() -> AsyncIterator[Admin]:
    holder = PolicyHolder()
    holder.set_snapshot(PolicySnapshot(tenants={"from-git": TenantPolicy(name="from-git")}))
    store = MemoryPolicyStore(holder)
    await store.load()
    hasher = KeyHasher(os.urandom(32))
    keyring = Keyring("k1", KEY_BYTES)
    app = create_app(AdminService(holder, store, hasher, keyring), AdminAuth(holder, hasher, TOKEN))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://admin") as client:
        yield Admin(client, holder, store, keyring)


def assert_openai_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    return error


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Basic abc"},
        {"authorization": "Bearer wrong-token"},
        {"authorization": "Bearer " + TOKEN[:-1]},
    ],
)
async def test_requests_without_a_valid_admin_credential_get_401(admin: Admin, headers: dict) -> None:
    response = await admin.client.get("/admin/v1/tenants", headers=headers)
    assert_openai_error(response, 401, "invalid_token")
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_api_keys_need_the_admin_scope(admin: Admin) -> None:
    await admin.client.put("/admin/v1/tenants/ops", json={"scopes": ["admin", "inference"]}, headers=ADMIN)
    await admin.client.put("/admin/v1/tenants/users", json={}, headers=ADMIN)
    ops = (await admin.client.post("/admin/v1/tenants/ops/keys", json={}, headers=ADMIN)).json()["key"]
    narrow = (
        await admin.client.post("/admin/v1/tenants/ops/keys", json={"scopes": ["inference"]}, headers=ADMIN)
    ).json()
    user = (await admin.client.post("/admin/v1/tenants/users/keys", json={}, headers=ADMIN)).json()["key"]
    assert (
        await admin.client.get("/admin/v1/policy", headers={"authorization": f"Bearer {ops}"})
    ).status_code == 200
    for key in (user, narrow["key"]):
        response = await admin.client.get("/admin/v1/policy", headers={"authorization": f"Bearer {key}"})
        assert_openai_error(response, 403, "insufficient_scope")
        assert response.headers["www-authenticate"] == 'Bearer error="insufficient_scope"'
    forged = ops[:-4] + ("AAAA" if not ops.endswith("AAAA") else "BBBB")
    assert_openai_error(
        await admin.client.get("/admin/v1/policy", headers={"authorization": f"Bearer {forged}"}),
        401,
        "invalid_token",
    )
    ops_id = ops.split("_")[1]
    await admin.client.post(f"/admin/v1/keys/{ops_id}/revoke", headers=ADMIN)
    assert_openai_error(
        await admin.client.get("/admin/v1/policy", headers={"authorization": f"Bearer {ops}"}),
        401,
        "invalid_token",
    )


async def test_tenants_put_get_list_delete(admin: Admin) -> None:
    body = {"displayName": "Team A", "scopes": ["inference"], "models": ["gemma"]}
    put = await admin.client.put("/admin/v1/tenants/team-a", json=body, headers=ADMIN)
    assert put.status_code == 200
    assert put.json() | body == put.json()
    assert put.json()["source"] == "admin"
    listed = (await admin.client.get("/admin/v1/tenants", headers=ADMIN)).json()["data"]
    assert [(t["name"], t["source"]) for t in listed] == [("from-git", "resource"), ("team-a", "admin")]
    assert (await admin.client.get("/admin/v1/tenants/team-a", headers=ADMIN)).json()["models"] == ["gemma"]
    assert (await admin.client.delete("/admin/v1/tenants/team-a", headers=ADMIN)).status_code == 200
    assert_openai_error(await admin.client.get("/admin/v1/tenants/team-a", headers=ADMIN), 404, "not_found")
    assert_openai_error(
        await admin.client.delete("/admin/v1/tenants/team-a", headers=ADMIN), 404, "not_found"
    )


async def test_resource_tenants_are_read_only(admin: Admin) -> None:
    for response in (
        await admin.client.put("/admin/v1/tenants/from-git", json={}, headers=ADMIN),
        await admin.client.delete("/admin/v1/tenants/from-git", headers=ADMIN),
    ):
        error = assert_openai_error(response, 409, "conflict")
        assert "Tenant resource" in error["message"]
    # Keys for a resource tenant are fine: keys always live in the store.
    assert (
        await admin.client.post("/admin/v1/tenants/from-git/keys", json={}, headers=ADMIN)
    ).status_code == 201


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/admin/v1/tenants/Bad_Name", {}, "name"),
        ("/admin/v1/tenants/ok", {"scopes": ["root"]}, "scopes.0"),
        ("/admin/v1/tenants/ok", {"models": ["*", "gemma"]}, None),
        ("/admin/v1/tenants/ok", {"unknownField": 1}, "unknownField"),
    ],
)
async def test_bad_tenant_input_gets_400_in_the_openai_shape(
    admin: Admin, path: str, body: dict, param
) -> None:
    error = assert_openai_error(
        await admin.client.put(path, json=body, headers=ADMIN), 400, "invalid_request_error"
    )
    assert error["param"] == param


async def test_keys_are_shown_once_and_listed_without_digest(admin: Admin) -> None:
    await admin.client.put("/admin/v1/tenants/team-a", json={"models": ["gemma", "qwen"]}, headers=ADMIN)
    created = await admin.client.post(
        "/admin/v1/tenants/team-a/keys",
        json={"name": "ci", "models": ["gemma"], "expiresAt": "2099-01-01T00:00:00Z"},
        headers=ADMIN,
    )
    assert created.status_code == 201
    key, record = created.json()["key"], created.json()["record"]
    assert key.startswith("ifx_")
    assert record["last4"] == key[-4:]
    assert record["models"] == ["gemma"]
    listed = await admin.client.get("/admin/v1/tenants/team-a/keys", headers=ADMIN)
    one = await admin.client.get(f"/admin/v1/keys/{record['id']}", headers=ADMIN)
    for text in (listed.text, one.text):
        assert key not in text
        assert "digest" not in text
        assert admin.holder.current.keys[record["id"]].digest not in text
    assert one.json() == record
    # Narrowing only: a key cannot get what its tenant lacks.
    for body, word in (({"scopes": ["admin"]}, "scopes"), ({"models": ["llama"]}, "models")):
        error = assert_openai_error(
            await admin.client.post("/admin/v1/tenants/team-a/keys", json=body, headers=ADMIN),
            400,
            "invalid_request_error",
        )
        assert word in error["message"]
    past = {"expiresAt": "2001-01-01T00:00:00Z"}
    assert_openai_error(
        await admin.client.post("/admin/v1/tenants/team-a/keys", json=past, headers=ADMIN),
        400,
        "invalid_request_error",
    )
    assert_openai_error(
        await admin.client.post("/admin/v1/tenants/nobody/keys", json={}, headers=ADMIN), 404, "not_found"
    )


async def test_revoke_and_rotate(admin: Admin) -> None:
    await admin.client.put("/admin/v1/tenants/team-a", json={}, headers=ADMIN)
    record = (await admin.client.post("/admin/v1/tenants/team-a/keys", json={}, headers=ADMIN)).json()[
        "record"
    ]
    rotated = await admin.client.post(
        f"/admin/v1/keys/{record['id']}/rotate", json={"overlapSeconds": 60}, headers=ADMIN
    )
    assert rotated.status_code == 201
    new, previous = rotated.json()["record"], rotated.json()["previous"]
    assert previous["replacedBy"] == new["id"]
    assert previous["expiresAt"] is not None
    assert new["id"] in admin.holder.current.keys
    revoked = await admin.client.post(f"/admin/v1/keys/{new['id']}/revoke", headers=ADMIN)
    assert revoked.json()["revokedAt"] is not None
    error = assert_openai_error(
        await admin.client.post(f"/admin/v1/keys/{new['id']}/rotate", headers=ADMIN), 409, "conflict"
    )
    assert "revoked or expired" in error["message"]
    assert_openai_error(
        await admin.client.post(f"/admin/v1/keys/{'a' * 16}/revoke", headers=ADMIN), 404, "not_found"
    )
    assert_openai_error(
        await admin.client.post(
            f"/admin/v1/keys/{record['id']}/rotate", json={"overlapSeconds": -1}, headers=ADMIN
        ),
        400,
        "invalid_request_error",
    )


async def test_deleting_a_tenant_revokes_its_keys(admin: Admin) -> None:
    await admin.client.put("/admin/v1/tenants/team-a", json={}, headers=ADMIN)
    record = (await admin.client.post("/admin/v1/tenants/team-a/keys", json={}, headers=ADMIN)).json()[
        "record"
    ]
    await admin.client.delete("/admin/v1/tenants/team-a", headers=ADMIN)
    assert admin.holder.current.keys[record["id"]].revoked_at is not None


async def test_secrets_are_stored_encrypted_and_never_returned(admin: Admin) -> None:
    await admin.client.put("/admin/v1/tenants/team-a", json={}, headers=ADMIN)
    canary = "sk-canary-" + base64.b32encode(os.urandom(10)).decode()
    put = await admin.client.put(
        "/admin/v1/tenants/team-a/secrets/openai", json={"value": canary}, headers=ADMIN
    )
    assert put.status_code == 200
    assert put.json()["keyVersion"] == "k1"
    listed = await admin.client.get("/admin/v1/tenants/team-a/secrets", headers=ADMIN)
    assert [s["name"] for s in listed.json()["data"]] == ["openai"]
    assert canary not in put.text + listed.text
    sealed = await admin.store.get_secret("team-a", "openai")
    assert sealed is not None
    assert canary not in sealed.model_dump_json()
    assert admin.keyring.open(sealed, "team-a", "openai") == canary.encode()
    assert (
        await admin.client.delete("/admin/v1/tenants/team-a/secrets/openai", headers=ADMIN)
    ).status_code == 200
    assert (await admin.client.get("/admin/v1/tenants/team-a/secrets", headers=ADMIN)).json()["data"] == []
    assert_openai_error(
        await admin.client.put("/admin/v1/tenants/nobody/secrets/x", json={"value": "v"}, headers=ADMIN),
        404,
        "not_found",
    )
    assert_openai_error(
        await admin.client.put(
            "/admin/v1/tenants/team-a/secrets/bad%20name", json={"value": "v"}, headers=ADMIN
        ),
        400,
        "invalid_request_error",
    )


async def test_reencrypt_moves_secrets_to_the_current_key(admin: Admin) -> None:
    await admin.client.put("/admin/v1/tenants/team-a", json={}, headers=ADMIN)
    await admin.client.put("/admin/v1/tenants/team-a/secrets/openai", json={"value": "v1"}, headers=ADMIN)
    # The process restarts with a key file that adds k2 and makes it current (same store).
    k1, k2 = KEY_BYTES["k1"], os.urandom(32)
    rotated = Keyring("k2", {"k1": k1, "k2": k2})
    app = create_app(
        AdminService(admin.holder, admin.store, None, rotated), AdminAuth(admin.holder, None, TOKEN)
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://admin") as client:
        first = await client.post("/admin/v1/secrets/reencrypt", headers=ADMIN)
        again = await client.post("/admin/v1/secrets/reencrypt", headers=ADMIN)
    assert first.json() == {"resealed": 1, "keyVersion": "k2"}
    assert again.json() == {"resealed": 0, "keyVersion": "k2"}
    sealed = await admin.store.get_secret("team-a", "openai")
    assert sealed is not None
    assert sealed.key_version == "k2"
    assert Keyring("k2", {"k2": k2}).open(sealed, "team-a", "openai") == b"v1"


async def test_policy_summary_counts_what_the_replica_enforces(admin: Admin) -> None:
    await admin.client.put("/admin/v1/tenants/team-a", json={}, headers=ADMIN)
    record = (await admin.client.post("/admin/v1/tenants/team-a/keys", json={}, headers=ADMIN)).json()[
        "record"
    ]
    await admin.client.post("/admin/v1/tenants/team-a/keys", json={}, headers=ADMIN)
    await admin.client.post(f"/admin/v1/keys/{record['id']}/revoke", headers=ADMIN)
    summary = (await admin.client.get("/admin/v1/policy", headers=ADMIN)).json()
    assert summary | {"generation": 0} == {
        "generation": 0,
        "tenants": 2,
        "resourceTenants": 1,
        "adminTenants": 1,
        "keys": 2,
        "activeKeys": 1,
        "snapshotLoaded": True,
        "storeLoaded": True,
    }
    assert summary["generation"] == admin.holder.current.generation


async def test_unknown_routes_answer_in_the_openai_shape(admin: Admin) -> None:
    assert_openai_error(await admin.client.get("/admin/v1/nothing", headers=ADMIN), 404, "not_found")


async def test_budgets_and_rate_limits_on_tenants_and_keys_survive_rotation(admin: Admin) -> None:
    body = {"budget": {"monthly": "50"}, "rateLimits": {"requestsPerMinute": 600}}
    tenant = await admin.client.put("/admin/v1/tenants/team-b", json=body, headers=ADMIN)
    assert tenant.json()["budget"]["monthly"] == "50"
    assert admin.holder.current.tenants["team-b"].rate_limits.requests_per_minute == 600
    key = {"budget": {"daily": "1.5"}, "rateLimits": {"tokensPerMinute": 1000}}
    created = await admin.client.post("/admin/v1/tenants/team-b/keys", json=key, headers=ADMIN)
    record = created.json()["record"]
    assert record["budget"]["daily"] == "1.5"
    rotated = await admin.client.post(f"/admin/v1/keys/{record['id']}/rotate", headers=ADMIN)
    new = admin.holder.current.keys[rotated.json()["record"]["id"]]
    assert new.budget is not None
    assert new.budget.daily == "1.5"
    assert new.rate_limits is not None
    assert new.rate_limits.tokens_per_minute == 1000
    refused = await admin.client.put(
        "/admin/v1/tenants/team-c", json={"budget": {"daily": "-1"}}, headers=ADMIN
    )
    assert refused.status_code == 400
