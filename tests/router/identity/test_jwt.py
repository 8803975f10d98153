"""The JWT verifier's pure parts: accepted algorithms, key/alg matching, the scopes claim, and
claim mapping to tenants (signatures and standard claims are exercised over HTTP in
test_authenticate.py)."""

from __future__ import annotations

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from inferflux.crds.policy import PolicySnapshot, TenantPolicy
from inferflux.crds.tenant import Scope
from inferflux.router.identity.failures import AuthFailure
from inferflux.router.identity.jwks import JwksCache, SigningKey
from inferflux.router.identity.jwt import JwtVerifier, OidcSettings, key_fits, parse_algorithms, scopes_of
from inferflux.router.policy.effective import PolicyHolder


def test_only_asymmetric_algorithms_can_be_configured() -> None:
    assert parse_algorithms("RS256, ES256") == ("RS256", "ES256")
    for text in ("HS256", "none", "RS256,HS512", "", "rs256"):
        with pytest.raises(ValueError, match="OIDC algorithms"):
            parse_algorithms(text)


def signing_key(private: object, alg: str | None = None) -> SigningKey:
    algorithm = (
        pyjwt.algorithms.RSAAlgorithm
        if isinstance(private, rsa.RSAPrivateKey)
        else pyjwt.algorithms.ECAlgorithm
    )
    jwk = algorithm.to_jwk(private.public_key(), as_dict=True)  # type: ignore[attr-defined]
    return SigningKey(pyjwt.PyJWK({**jwk, **({"alg": alg} if alg else {})}), alg)


def test_the_key_type_must_fit_the_algorithm() -> None:
    rsa_key = signing_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    p256 = signing_key(ec.generate_private_key(ec.SECP256R1()))
    p384 = signing_key(ec.generate_private_key(ec.SECP384R1()))
    pinned = signing_key(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS512")
    assert key_fits("RS256", rsa_key)
    assert key_fits("PS256", rsa_key)
    assert not key_fits("ES256", rsa_key)
    assert key_fits("ES256", p256)
    assert not key_fits("RS256", p256)
    assert not key_fits("ES256", p384)
    assert key_fits("ES384", p384)
    assert key_fits("RS512", pinned)
    assert not key_fits("RS256", pinned)


@pytest.mark.parametrize(
    ("claim", "scopes"),
    [
        (None, None),
        ("inference models:read", [Scope.INFERENCE, Scope.MODELS_READ]),
        ("openid profile inference", [Scope.INFERENCE]),
        (["admin", "nonsense", 7], [Scope.ADMIN]),
        ("", []),
        (42, []),
    ],
)
def test_scopes_claim(claim, scopes) -> None:
    assert scopes_of(claim) == scopes


async def test_claims_map_to_tenants_and_narrow_scopes() -> None:
    holder = PolicyHolder()
    holder.set_snapshot(
        PolicySnapshot(
            tenants={
                "alpha": TenantPolicy(name="alpha", scopes=[Scope.INFERENCE], models=["a"]),
                "team": TenantPolicy(name="team", oidc_values=["idp-group-7"]),
            }
        )
    )
    verifier = JwtVerifier(OidcSettings("https://issuer", "aud", ("RS256",)), JwksCache("https://issuer"))

    async def claims(token: str) -> dict[str, object]:
        return {
            "alpha": {"tenant": "alpha", "sub": "u", "exp": 2000000000},
            "mapped": {"tenant": "idp-group-7", "scope": "admin models:read", "exp": 2000000000},
            "none": {"sub": "u", "exp": 2000000000},
        }[token]

    verifier.claims = claims  # type: ignore[method-assign]  # signatures are tested over HTTP
    alpha = await verifier.authenticate("alpha", holder.current)
    assert (alpha.tenant, alpha.subject, alpha.scopes, alpha.models) == (
        "alpha",
        "u",
        {Scope.INFERENCE},
        {"a"},
    )
    mapped = await verifier.authenticate("mapped", holder.current)
    assert (mapped.tenant, mapped.scopes, mapped.models) == ("team", {Scope.MODELS_READ}, None)
    with pytest.raises(AuthFailure, match="invalid or missing credential"):
        await verifier.authenticate("none", holder.current)
