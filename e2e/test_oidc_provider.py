"""The OIDC provider the identity tests rely on is real: Dex serves its documents and signs tokens.

These tests need no router. They pin down what the router's tests take for granted: the discovery
document and JWKS are served over HTTP, the password grant returns an RS256 ID token whose claims
are those of the configured client and user, that token verifies against the served keys (and
stops verifying once tampered with), and a wrong password gets no token.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time

import jwt
import pytest
from cluster_fixture import REPO
from oidc_fixture import CLIENT_ID, ID_TOKEN_SECONDS, DexProvider


def _segment(token: str, index: int) -> dict[str, object]:
    """One base64url JSON segment of a JWT, decoded without any verification."""
    part = token.split(".")[index]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def _verified_claims(provider: DexProvider, token: str) -> dict[str, object]:
    """The token's claims, verified against the key of its ``kid`` in the served JWKS."""
    key_set = jwt.PyJWKSet.from_dict(provider.jwks())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(key for key in key_set.keys if key.key_id == kid)
    claims: dict[str, object] = jwt.decode(
        token,
        key,
        algorithms=["RS256"],
        audience=provider.client_id,
        issuer=provider.issuer,
        options={"require": ["iss", "aud", "exp", "iat", "sub"]},
    )
    return claims


def test_dex_reports_the_pinned_version(oidc_provider: DexProvider) -> None:
    pinned = re.search(
        r"^\s*github\.com/dexidp/dex (v\S+)", (REPO / "e2e/oidc/go.mod").read_text(), re.MULTILINE
    )
    assert pinned, "github.com/dexidp/dex is not required in e2e/oidc/go.mod"
    version = subprocess.run(
        [oidc_provider.binary, "version"], capture_output=True, text=True, check=True
    ).stdout
    assert f"Dex Version: {pinned.group(1)}\n" in version, "stale binary: make oidc-bin"


def test_discovery_document_names_the_issuer_and_its_endpoints(oidc_provider: DexProvider) -> None:
    document = oidc_provider.discovery()

    assert document["issuer"] == oidc_provider.issuer
    for endpoint in ("jwks_uri", "token_endpoint", "authorization_endpoint"):
        assert document[endpoint].startswith(f"{oidc_provider.issuer}/"), endpoint
    assert "password" in document["grant_types_supported"]
    assert "RS256" in document["id_token_signing_alg_values_supported"]


def test_jwks_serves_rsa_signing_keys(oidc_provider: DexProvider) -> None:
    keys = oidc_provider.jwks()["keys"]

    assert keys
    for key in keys:
        assert key["kty"] == "RSA"
        assert key["use"] == "sig"
        assert key["alg"] == "RS256"
        assert key["kid"]
        assert "d" not in key  # public halves only


def test_id_token_is_an_rs256_jwt_with_the_configured_claims(oidc_provider: DexProvider) -> None:
    before = int(time.time())
    token = oidc_provider.token()

    header = _segment(token, 0)
    assert header["alg"] == "RS256"
    assert header["kid"] in {key["kid"] for key in oidc_provider.jwks()["keys"]}
    claims = _verified_claims(oidc_provider, token)
    assert claims["iss"] == oidc_provider.issuer
    assert claims["aud"] == CLIENT_ID
    assert claims["email"] == oidc_provider.user.email
    assert claims["email_verified"] is True
    assert isinstance(claims["exp"], int)
    assert isinstance(claims["iat"], int)
    assert claims["iat"] >= before - 1
    assert claims["exp"] - claims["iat"] == ID_TOKEN_SECONDS
    # Dex's subject is its user id and connector id, protobuf-encoded in base64url.
    subject = str(claims["sub"])
    raw_subject = base64.urlsafe_b64decode(subject + "=" * (-len(subject) % 4))
    assert oidc_provider.user.user_id.encode() in raw_subject
    assert b"local" in raw_subject


def test_without_the_email_scope_the_token_has_no_email(oidc_provider: DexProvider) -> None:
    claims = _verified_claims(oidc_provider, oidc_provider.token(["openid"]))

    assert "email" not in claims
    assert claims["aud"] == CLIENT_ID


def test_a_tampered_token_no_longer_verifies(oidc_provider: DexProvider) -> None:
    header, payload, signature = oidc_provider.token().split(".")
    claims = _segment(f"{header}.{payload}", 1)
    claims["email"] = "mallory@example.com"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()

    with pytest.raises(jwt.InvalidSignatureError):
        _verified_claims(oidc_provider, f"{header}.{forged_payload}.{signature}")


@pytest.mark.parametrize(
    ("who", "status", "error"),
    [
        ("wrong password", 401, "access_denied"),
        ("unknown user", 401, "access_denied"),
        ("wrong client secret", 401, "invalid_client"),
    ],
)
def test_bad_credentials_get_an_error_and_no_token(
    oidc_provider: DexProvider, who: str, status: int, error: str
) -> None:
    user = oidc_provider.user
    username, password = user.email, user.password
    client_secret = oidc_provider.client_secret
    if who == "wrong password":
        password += "x"
    elif who == "unknown user":
        username = "nobody@example.com"
    else:
        client_secret += "x"

    response = oidc_provider.password_grant(username, password, client_secret=client_secret)

    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert "id_token" not in body
    assert "access_token" not in body
