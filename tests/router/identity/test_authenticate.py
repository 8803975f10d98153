"""The identity stage through the real router over HTTP: one table of credentials, each case asserting
the status, the whole body and the ``WWW-Authenticate`` challenge.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from inferflux.crds.tenant import Scope
from inferflux.router.identity.failures import FORBIDDEN, UNAUTHENTICATED

Headers = dict[str, str]
UNAUTHORIZED_BODY = {
    "error": {
        "message": UNAUTHENTICATED,
        "type": "authentication_error",
        "param": None,
        "code": "invalid_token",
    }
}
FORBIDDEN_BODY = {
    "error": {"message": FORBIDDEN, "type": "permission_error", "param": None, "code": "insufficient_scope"}
}
INVALID = 'Bearer error="invalid_token"'
INSUFFICIENT = 'Bearer error="insufficient_scope"'


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A JWT's first two segments (what an attacker controls) before any signature."""
    return b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())


def claims_of(identity: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": identity.jwks.url, "aud": "inferflux", "tenant": "alpha", "exp": now + 300}


def alg_none(identity: Any) -> Headers:
    token = unsigned({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, claims_of(identity)) + "."
    return bearer(token)


def hs256_with_public_key(identity: Any) -> Headers:
    """Algorithm confusion: HMAC "signed" with the issuer's public key as the shared secret."""
    public = (
        identity.signing["rsa-1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signing_input = unsigned({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, claims_of(identity))
    signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    return bearer(signing_input + "." + b64(signature))


def _resigned(identity: Any) -> str:
    """A well-formed RS256 token naming the issuer's kid, signed by some other RSA key."""
    return identity.token(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))


def _relabelled(identity: Any) -> str:
    """An ES256 token whose kid names the issuer's RSA key: the key type must match the alg."""
    return identity.token(kid="rsa-1", alg="ES256", key=identity.signing["ec-1"])


def _unknown_kid(identity: Any) -> str:
    return identity.token(
        kid="rsa-unpublished", key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )


def bearer(token: str) -> Headers:
    return {"authorization": f"Bearer {token}"}


def ago(days: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=days)


@dataclass(frozen=True)
class Case:
    name: str
    credential: Callable[[Any], Headers]
    status: int
    model: str = "a"
    path: str = "/v1/chat/completions"
    why: str = ""  # the refusal reason counted in inferflux_router_auth_failures_total


CASES = [
    Case("no header", lambda i: {}, 401, why="missing"),
    Case("wrong scheme", lambda i: {"authorization": "Basic dXNlcjpwYXNz"}, 401, why="scheme"),
    Case("garbage token", lambda i: bearer("not-a-credential"), 401, why="unrecognised"),
    Case("garbage jwt-shaped token", lambda i: bearer("aaaa.bbbb.cccc"), 401, why="malformed"),
    Case("non-ascii header", lambda i: {"authorization": "Bearer ifx_é"}, 401, why="malformed"),
    Case("oversized header", lambda i: bearer("a" * 20_000), 401, why="oversized"),
    Case("api key", lambda i: bearer(i.key()), 200),
    Case("api key in x-api-key", lambda i: {"x-api-key": i.key()}, 200),
    Case(
        "api key as websocket subprotocol",
        lambda i: {"sec-websocket-protocol": f"chat, bearer.{i.key()}"},
        200,
    ),
    Case(
        "two different credentials", lambda i: {**bearer(i.key()), "x-api-key": i.key()}, 401, why="ambiguous"
    ),
    Case(
        "forged api key (known id, wrong secret)", lambda i: bearer(i.key()[:-4] + "AAAA"), 401, why="bad_key"
    ),
    Case("unknown api key", lambda i: bearer("ifx_" + "a" * 16 + "_" + "B" * 43), 401, why="unknown_key"),
    Case("revoked key", lambda i: bearer(i.key(revoked_at=ago(-1 / 24))), 401, why="revoked"),
    Case("expired key", lambda i: bearer(i.key(expires_at=ago(-1))), 401, why="expired"),
    Case(
        "key in its rotation overlap", lambda i: bearer(i.key(expires_at=ago(1), replaced_by="b" * 16)), 200
    ),
    Case(
        "key after its rotation overlap",
        lambda i: bearer(i.key(expires_at=ago(-0.01), replaced_by="b" * 16)),
        401,
        why="expired",
    ),
    Case(
        "key of tenant A on tenant B's model", lambda i: bearer(i.key("alpha")), 403, model="b", why="model"
    ),
    Case(
        "key narrowed to other models",
        lambda i: bearer(i.key(models=["shared"])),
        403,
        model="a",
        why="model",
    ),
    Case("key narrowed to its model", lambda i: bearer(i.key(models=["shared"])), 200, model="shared"),
    Case(
        "key without the inference scope",
        lambda i: bearer(i.key(scopes=[Scope.MODELS_READ])),
        403,
        why="scope",
    ),
    Case("key of a suspended tenant", lambda i: bearer(i.key("frozen")), 401, why="suspended"),
    Case("key of a deleted tenant", lambda i: bearer(i.key("gone")), 401, why="unknown_tenant"),
    Case("RS256 token", lambda i: bearer(i.token()), 200),
    Case("ES256 token", lambda i: bearer(i.token("ec-1", "ES256")), 200),
    Case("ES256 header on an RSA key", lambda i: bearer(_relabelled(i)), 401, why="key_type"),
    Case("bad signature", lambda i: bearer(_resigned(i)), 401, why="signature"),
    Case("alg none", alg_none, 401, why="algorithm"),
    Case("HS256 signed with the public key", hs256_with_public_key, 401, why="algorithm"),
    Case("expired token", lambda i: bearer(i.token(exp=int(time.time()) - 60)), 401, why="expired"),
    Case("token without exp", lambda i: bearer(i.token(exp=None)), 401, why="missing_claim"),
    Case(
        "nbf in the future", lambda i: bearer(i.token(nbf=int(time.time()) + 600)), 401, why="not_yet_valid"
    ),
    Case("nbf within the leeway", lambda i: bearer(i.token(nbf=int(time.time()) + 2)), 200),
    Case("wrong aud", lambda i: bearer(i.token(aud="someone-else")), 401, why="audience"),
    Case("wrong iss", lambda i: bearer(i.token(iss="https://evil.example")), 401, why="issuer"),
    Case("unknown kid", lambda i: bearer(_unknown_kid(i)), 401, why="unknown_kid"),
    Case("token naming no tenant", lambda i: bearer(i.token(tenant=None)), 401, why="unknown_tenant"),
    Case("token of an unknown tenant", lambda i: bearer(i.token(tenant="nobody")), 401, why="unknown_tenant"),
    Case("token of a suspended tenant", lambda i: bearer(i.token(tenant="frozen")), 401, why="suspended"),
    Case("token mapped by oidc.values", lambda i: bearer(i.token(tenant="group-gamma")), 200),
    Case(
        "token scopes without inference",
        lambda i: bearer(i.token(scope="openid models:read")),
        403,
        why="scope",
    ),
    Case("token scopes as a list", lambda i: bearer(i.token(scope=["inference"])), 200),
    Case("token of tenant A on tenant B's model", lambda i: bearer(i.token()), 403, model="b", why="model"),
    Case("health probe without a credential", lambda i: {}, 200, path="/healthz"),
    Case("metrics open by default", lambda i: {}, 200, path="/metrics"),
    Case("models list without a credential", lambda i: {}, 401, path="/v1/models", why="missing"),
    Case(
        "inference API with tenant B's model",
        lambda i: bearer(i.key("alpha")),
        403,
        model="b",
        path="/api/v1/inference",
        why="model",
    ),
    Case("inference API", lambda i: bearer(i.key("alpha")), 200, path="/api/v1/inference"),
]


def request_body(case: Case) -> dict[str, Any] | None:
    if case.path == "/api/v1/inference":
        return {"model": case.model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    if case.path.startswith("/v1/"):
        return {"model": case.model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    return None


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_credentials(make_identity, case: Case) -> None:
    identity = await make_identity()
    harness = identity.harness
    headers = case.credential(identity)
    document = request_body(case)
    method = "POST" if document is not None and case.path != "/v1/models" else "GET"
    async with harness.session.request(
        method, harness.url + case.path, json=document if method == "POST" else None, headers=headers
    ) as response:
        status, challenge = response.status, response.headers.get("www-authenticate")
        payload = await response.read()
    assert status == case.status, payload
    if case.why:  # refused for the right reason, not merely refused
        _, page = await get(harness, "/metrics")
        assert f'inferflux_router_auth_failures_total{{reason="{case.why}"}} 1.0'.encode() in page
    if status == 401:
        assert json.loads(payload) == UNAUTHORIZED_BODY
        assert challenge == INVALID
    elif status == 403:
        assert json.loads(payload) == FORBIDDEN_BODY
        assert challenge == INSUFFICIENT
    else:
        assert challenge is None
        if case.path == "/v1/chat/completions":
            assert json.loads(payload)["choices"][0]["message"]["content"] == "t0 t1 t2 "
        elif case.path == "/api/v1/inference":
            assert json.loads(payload)["output"] == "t0 t1 t2 "
        elif case.path == "/metrics":
            assert b"inferflux_router_auth_failures" in payload
        else:
            assert json.loads(payload) == {"status": "ok"}


async def get(harness: Any, path: str, headers: Headers | None = None) -> tuple[int, Any]:
    async with harness.session.get(harness.url + path, headers=headers or {}) as response:
        return response.status, await response.read()


async def chat(harness: Any, headers: Headers, model: str = "a", path: str = "/v1/chat/completions") -> Any:
    document = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    async with harness.post(path, document, headers=headers) as response:
        return response.status, response.headers.get("www-authenticate"), json.loads(await response.read())


async def test_models_list_shows_only_the_callers_models(make_identity) -> None:
    identity = await make_identity()
    for key, expected in (
        (identity.key("alpha"), ["a", "shared"]),
        (identity.key("alpha", models=["shared", "b"]), ["shared"]),
        (identity.key("beta"), ["b"]),
        (identity.key("gamma"), ["a", "b", "shared"]),
    ):
        status, payload = await get(identity.harness, "/v1/models", bearer(key))
        assert status == 200
        assert [model["id"] for model in json.loads(payload)["data"]] == expected


async def test_a_revocation_applies_to_the_next_request(make_identity) -> None:
    identity = await make_identity()
    key = identity.key()
    assert (await chat(identity.harness, bearer(key)))[0] == 200
    record = identity.record(key)
    identity.holder.put_key(record.id, record.model_copy(update={"revoked_at": ago(0)}))
    assert (await chat(identity.harness, bearer(key)))[:2] == (401, INVALID)


async def test_unknown_kid_is_fetched_once_rotated_in(make_identity) -> None:
    identity = await make_identity()
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = identity.token(kid="rsa-2", key=rotated)
    assert (await chat(identity.harness, bearer(token)))[0] == 401
    identity.jwks.add("rsa-2", rotated)  # the issuer rotates its new key in
    loop_deadline = time.monotonic() + 5
    while (status := (await chat(identity.harness, bearer(token)))[0]) == 401:
        assert time.monotonic() < loop_deadline, "the rotated key was never fetched"
        await asyncio.sleep(0.05)
    assert status == 200


async def test_made_up_kids_cannot_hammer_the_issuer(make_identity) -> None:
    identity = await make_identity(oidc_jwks_refresh_seconds=3600)
    assert (await chat(identity.harness, bearer(identity.token())))[0] == 200
    assert identity.jwks.fetches == 1
    garbage = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for n in range(20):
        assert (await chat(identity.harness, bearer(identity.token(kid=f"made-up-{n}", key=garbage))))[
            0
        ] == 401
    assert identity.jwks.fetches == 1


async def test_refusals_are_counted_by_reason(make_identity) -> None:
    identity = await make_identity()
    harness = identity.harness
    await chat(harness, {})
    await chat(harness, bearer(identity.key(revoked_at=ago(0))))
    await chat(harness, bearer(identity.key()), model="b")
    await chat(harness, bearer(identity.token(aud="other")))
    status, page = await get(harness, "/metrics")
    assert status == 200
    for reason in ("missing", "revoked", "model", "audience"):
        assert f'inferflux_router_auth_failures_total{{reason="{reason}"}} 1.0'.encode() in page


async def test_metrics_behind_models_read_when_asked(make_identity) -> None:
    identity = await make_identity(metrics_auth=True)
    assert (await get(identity.harness, "/metrics"))[0] == 401
    assert (await get(identity.harness, "/metrics", bearer(identity.key(scopes=[Scope.INFERENCE]))))[0] == 403
    assert (await get(identity.harness, "/metrics", bearer(identity.key())))[0] == 200
    assert (await get(identity.harness, "/readyz"))[0] in (200, 503)  # open whatever its state


async def test_anthropic_clients_are_refused_in_anthropic_shape(make_identity) -> None:
    identity = await make_identity()
    document = {"model": "b", "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]}
    for headers, status, kind, challenge in (
        ({}, 401, "authentication_error", INVALID),
        ({"x-api-key": identity.key("alpha")}, 403, "permission_error", INSUFFICIENT),
    ):
        async with identity.harness.post("/v1/messages", document, headers=headers) as response:
            assert response.status == status
            assert response.headers["www-authenticate"] == challenge
            body = json.loads(await response.read())
        message = UNAUTHENTICATED if status == 401 else FORBIDDEN
        assert body == {"type": "error", "error": {"type": kind, "message": message}}
    async with identity.harness.post(
        "/v1/messages", {**document, "model": "a"}, headers={"x-api-key": identity.key()}
    ) as response:
        assert response.status == 200
        assert (await response.json())["content"][0]["text"] == "t0 t1 t2 "


async def test_auth_off_serves_without_credentials(make_router, mocks, route) -> None:
    backend = await mocks()
    harness = await make_router({"a": route([backend.url], name="a")})  # the fixture's default: auth off
    assert harness.router.auth is None
    status, _, body = await chat(harness, {})
    assert status == 200
    assert body["choices"][0]["message"]["content"] == "t0 t1 t2 "


async def test_a_remembered_key_still_expires(make_identity) -> None:
    identity = await make_identity()
    key = identity.key(expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    assert (await chat(identity.harness, bearer(key)))[0] == 200  # proven, and now remembered
    deadline = time.monotonic() + 5
    while (status := (await chat(identity.harness, bearer(key)))[0]) == 200:
        assert time.monotonic() < deadline, "an expired key kept working"
        await asyncio.sleep(0.05)
    assert status == 401
