"""Fixtures for the identity tests: a real router with auth on, tenants, API keys, and a JWKS.

The JWKS is served over HTTP by a small aiohttp server (discovery document included), from keys
made by `cryptography`; tokens are signed with PyJWT. Tenants: ``alpha`` may use models ``a`` and
``shared``, ``beta`` only ``b``, ``frozen`` is suspended; ``gamma`` is named by the OIDC claim value
``group-gamma``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from inferflux.crds.policy import ApiKeyRecord, PolicySnapshot, TenantPolicy
from inferflux.crds.tenant import Scope
from inferflux.router.identity import api_keys
from inferflux.router.policy.effective import PolicyHolder

AUDIENCE = "inferflux"
MODELS = ("a", "b", "shared")


class JwksServer:
    """An issuer's discovery document and JWKS over HTTP; `publish` changes the served keys."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}  # kid -> private key
        self.fetches = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    def add(self, kid: str, private_key: Any) -> None:
        self.keys[kid] = private_key

    def document(self) -> dict[str, Any]:
        # What an issuer publishes: the public half of each key only.
        return {"keys": [{**_public_jwk(private), "kid": kid} for kid, private in self.keys.items()]}

    async def start(self) -> JwksServer:
        app = web.Application()

        async def discovery(request: web.Request) -> web.Response:
            return web.json_response({"issuer": self.url, "jwks_uri": self.url + "/keys"})

        async def keys(request: web.Request) -> web.Response:
            self.fetches += 1
            return web.json_response(self.document())

        app.router.add_get("/.well-known/openid-configuration", discovery)
        app.router.add_get("/keys", keys)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _public_jwk(private: Any) -> dict[str, Any]:
    if isinstance(private, rsa.RSAPrivateKey):
        return dict(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key(), as_dict=True))
    return dict(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key(), as_dict=True))


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


class Identity:
    """A running router with auth on, its policy, its key hasher and its identity provider."""

    def __init__(self, holder: PolicyHolder, hasher: api_keys.KeyHasher, jwks: JwksServer) -> None:
        self.holder = holder
        self.hasher = hasher
        self.jwks = jwks
        self.harness: Any = None
        self.signing: dict[str, Any] = {}

    def key(self, tenant: str = "alpha", **record: Any) -> str:
        """Issue a key for ``tenant``; ``record`` overrides fields of its stored record."""
        key, issued = api_keys.generate(self.hasher, tenant)
        self.holder.put_key(issued.id, issued.model_copy(update=record))
        return key

    def record(self, key: str) -> ApiKeyRecord:
        key_id = api_keys.key_id_of(key)
        assert key_id is not None
        return self.holder.current.keys[key_id]

    def token(self, kid: str = "rsa-1", alg: str = "RS256", key: Any = None, **claims: Any) -> str:
        """A token naming ``kid``, signed by that issuer key (or ``key``); ``claims`` override
        (None removes) the defaults."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.jwks.url,
            "aud": AUDIENCE,
            "sub": "user-1",
            "tenant": "alpha",
            "iat": now,
            "exp": now + 300,
        }
        body.update(claims)
        body = {name: value for name, value in body.items() if value is not None}
        signer = key if key is not None else self.signing[kid]
        return jwt.encode(body, signer, algorithm=alg, headers={"kid": kid})


def tenants() -> PolicySnapshot:
    every = [Scope.INFERENCE, Scope.MODELS_READ]
    return PolicySnapshot(
        tenants={
            "alpha": TenantPolicy(name="alpha", scopes=every, models=["a", "shared"]),
            "beta": TenantPolicy(name="beta", scopes=every, models=["b"]),
            "frozen": TenantPolicy(name="frozen", scopes=every, suspended=True),
            "gamma": TenantPolicy(name="gamma", scopes=every, oidc_values=["group-gamma"]),
        }
    )


@pytest.fixture
async def jwks_server() -> AsyncIterator[JwksServer]:
    server = await JwksServer().start()
    yield server
    await server.stop()


@pytest.fixture
def make_identity(
    make_router: Callable[..., Any],
    mocks: Callable[..., Any],
    route: Callable[..., dict[str, Any]],
    jwks_server: JwksServer,
    tmp_path: Path,
) -> Callable[..., Any]:
    """``await make_identity(**settings)``: a secured router over the fake runtime, models a/b/shared."""

    async def make(**overrides: Any) -> Identity:
        secret = tmp_path / "auth-secret"
        secret.write_bytes(b"s" * 48)
        holder = PolicyHolder()
        holder.set_snapshot(tenants())
        identity = Identity(holder, api_keys.load_hasher(str(secret)), jwks_server)
        identity.signing = {"rsa-1": rsa_key(), "ec-1": ec_key()}
        for kid, private in identity.signing.items():
            jwks_server.add(kid, private)
        backend = await mocks()
        settings: dict[str, Any] = {
            "auth": True,
            "auth_secret_file": str(secret),
            "oidc_issuer": jwks_server.url,
            "oidc_audience": AUDIENCE,
            "oidc_leeway_seconds": 5.0,
            "oidc_jwks_refresh_seconds": 0.2,
            **overrides,
        }
        models = {name: route([backend.url], name=name) for name in MODELS}
        identity.harness = await make_router(models, policy=holder, **settings)
        return identity

    return make


@pytest.fixture
def days() -> Callable[[float], dt.datetime]:
    """``days(n)``: now plus ``n`` days (negative: in the past), in UTC."""
    return lambda n: dt.datetime.now(dt.UTC) + dt.timedelta(days=n)
