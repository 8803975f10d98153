"""A token from a real OIDC provider (Dex) gets through the router; no token or a forged one does not.

The router runs as a process (``python -m inferflux.router``) configured only through its
environment, as in production: ``INFERFLUX_OIDC_ISSUER`` is Dex's issuer (the router discovers
the JWKS from it), ``INFERFLUX_OIDC_AUDIENCE`` Dex's client id, and the tenant claim is ``email``;
the policy file holds one tenant whose ``oidcValues`` list the Dex user's address. Behind the
router, one model is served by the fake OpenAI backend of the router's tests (a stand-in for a
runtime pod: this test is about the credential, not the engine).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest
from cluster_fixture import REPO, Component, free_port
from cryptography.hazmat.primitives.asymmetric import rsa
from oidc_fixture import DexProvider, stop_process

MOCK_OPENAI = REPO / "tests" / "router" / "mock_openai.py"
TENANT = "team-oidc"
MODEL = "m"
STARTUP_SECONDS = 60


@dataclass
class RouterProcess:
    """The router and its backend, both running; ``url`` is the router's."""

    url: str
    router: Component
    backend: Component


def _wait_until_ok(url: str, processes: list[Component], timeout: float = STARTUP_SECONDS) -> None:
    """Poll ``url`` until it answers 200, failing with the logs if a process exits or time runs out."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2, trust_env=False) as client:
        while True:
            for process in processes:
                if not process.running():
                    pytest.fail(f"{process.name} exited:\n{process.log_tail()}", pytrace=False)
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {p.name} ---\n{p.log_tail()}" for p in processes)
                pytest.fail(f"{url} not ready within {timeout:.0f} s\n{logs}", pytrace=False)
            time.sleep(0.1)


def _policy(provider: DexProvider) -> dict[str, object]:
    """A policy snapshot with one tenant, identified by the Dex user's email (the tenant claim)."""
    tenant = {
        "name": TENANT,
        "scopes": ["inference", "models:read"],
        "models": ["*"],
        "source": "resource",
        "oidcValues": [provider.user.email],
    }
    return {"version": 1, "tenants": {TENANT: tenant}}


@pytest.fixture(scope="module")
def router(oidc_provider: DexProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RouterProcess]:
    """The router as a process, trusting Dex, with one model on a fake OpenAI backend."""
    workdir = tmp_path_factory.mktemp("oidc-router")
    backend_port, router_port, admin_port = free_port(), free_port(), free_port()
    backend = Component(
        "backend", [sys.executable, str(MOCK_OPENAI), str(backend_port)], workdir / "backend.log"
    )
    route = {"name": MODEL, "engine": "llamacpp", "endpoints": [{"url": f"http://127.0.0.1:{backend_port}"}]}
    routes = workdir / "routes.json"
    routes.write_text(json.dumps({"version": 1, "models": {MODEL: route}}))
    policy = workdir / "policy.json"
    policy.write_text(json.dumps(_policy(oidc_provider)))
    hashing_secret = workdir / "hashing-secret"
    hashing_secret.write_text(
        secrets.token_hex(32)
    )  # text, as a mounted Secret holds it: raw bytes may be stripped
    env = {
        **os.environ,
        "INFERFLUX_ROUTER_HOST": "127.0.0.1",
        "INFERFLUX_ROUTER_PORT": str(router_port),
        "INFERFLUX_ADMIN_PORT": str(admin_port),
        "INFERFLUX_ROUTES_FILE": str(routes),
        "INFERFLUX_POLICY_FILE": str(policy),
        "INFERFLUX_AUTH": "true",
        "INFERFLUX_AUTH_SECRET_FILE": str(hashing_secret),
        "INFERFLUX_OIDC_ISSUER": oidc_provider.issuer,
        "INFERFLUX_OIDC_AUDIENCE": oidc_provider.client_id,
        "INFERFLUX_OIDC_TENANT_CLAIM": "email",
        "INFERFLUX_LOG_LEVEL": "debug",  # the log must hold no token even at its most verbose
        "NO_PROXY": "127.0.0.1,localhost",
    }
    router = Component("router", [sys.executable, "-m", "inferflux.router"], workdir / "router.log")
    try:
        backend.start(env)
        _wait_until_ok(f"http://127.0.0.1:{backend_port}/v1/models", [backend])
        router.start(env)
        _wait_until_ok(f"http://127.0.0.1:{router_port}/readyz", [backend, router])
        yield RouterProcess(f"http://127.0.0.1:{router_port}", router, backend)
    finally:
        stop_process(router)
        stop_process(backend)


def _chat(router: RouterProcess, headers: dict[str, str]) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}
    with httpx.Client(timeout=30, trust_env=False) as client:
        return client.post(f"{router.url}/v1/chat/completions", json=body, headers=headers)


def _assert_invalid_token(response: httpx.Response) -> None:
    """A 401 as the identity contract says: invalid_token, OpenAI-shaped, and nothing more."""
    assert response.status_code == 401, response.text
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    error = response.json()["error"]
    assert error["message"]
    assert error["type"]


def _forged(token: str) -> str:
    """``token`` with the same header and claims, signed by a fresh RSA key Dex never published."""
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": header["kid"]})


def _tampered(token: str) -> str:
    """``token`` with one claim changed and Dex's signature kept: the signature no longer matches."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] += 3600
    changed = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{changed}.{signature}"


def test_a_dex_token_is_accepted(router: RouterProcess, oidc_provider: DexProvider) -> None:
    token = oidc_provider.token()

    response = _chat(router, {"Authorization": f"Bearer {token}"})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"]


def test_without_a_token_the_router_answers_401(router: RouterProcess) -> None:
    _assert_invalid_token(_chat(router, {}))


@pytest.mark.parametrize("spoil", [_tampered, _forged], ids=["tampered", "forged"])
def test_a_spoiled_dex_token_is_refused(
    router: RouterProcess, oidc_provider: DexProvider, spoil: Callable[[str], str]
) -> None:
    token = spoil(oidc_provider.token())

    response = _chat(router, {"Authorization": f"Bearer {token}"})

    _assert_invalid_token(response)
    assert token not in response.text


def test_a_token_for_no_tenant_is_refused(router: RouterProcess, oidc_provider: DexProvider) -> None:
    """Without the ``email`` scope Dex leaves the tenant claim out: valid signature, no tenant."""
    token = oidc_provider.token(["openid"])

    _assert_invalid_token(_chat(router, {"Authorization": f"Bearer {token}"}))


def test_the_router_log_holds_no_token(router: RouterProcess, oidc_provider: DexProvider) -> None:
    """At debug level, after one accepted and one refused request, no part of the token is logged."""
    token = oidc_provider.token()
    assert _chat(router, {"Authorization": f"Bearer {token}"}).status_code == 200
    _assert_invalid_token(_chat(router, {"Authorization": f"Bearer {_tampered(token)}"}))

    log = Path(router.router.log_path).read_text(errors="replace")
    _, payload, signature = token.split(".")
    assert payload not in log
    assert signature not in log
