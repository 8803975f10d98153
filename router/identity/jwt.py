"""OIDC access tokens: signature from the issuer's JWKS, the standard claims, then the claim mapping.

Only the configured asymmetric algorithms are accepted (``alg: none`` and every HMAC algorithm are
refused before any key is looked at, which is what defeats algorithm confusion: a token "signed"
with HS256 using the public key as the secret), and the key named by ``kid`` must itself be of the
type the header's ``alg`` needs. ``iss``, ``aud`` and ``exp`` are required; ``exp`` and ``nbf`` are
checked with the configured leeway. PyJWT does the cryptography.

Claim mapping: the tenant claim (``INFERFLUX_OIDC_TENANT_CLAIM``) holds a tenant's name or one of
the values the tenant lists under ``oidc.values``; the scopes claim (``INFERFLUX_OIDC_SCOPES_CLAIM``,
a space-separated string or a list) is intersected with the tenant's scopes, and a token without
it gets the tenant's scopes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from inferflux.crds.policy import TenantPolicy
from inferflux.crds.tenant import Scope
from inferflux.router.identity.failures import unauthenticated
from inferflux.router.identity.jwks import JwksCache, SigningKey
from inferflux.router.identity.principal import Principal, within
from inferflux.router.policy.effective import Policy

# The JOSE algorithms a verifier may be configured with, and the key type (kty) each one needs.
KEY_TYPES: Mapping[str, str] = {
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
}
_CURVE_ALGORITHM = {"ES256", "ES384", "ES512"}  # the curve fixes the algorithm: PyJWK derives it
_FAILURES: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid"),
    (jwt.InvalidAudienceError, "audience"),
    (jwt.InvalidIssuerError, "issuer"),
    (jwt.InvalidSignatureError, "signature"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
)


def parse_algorithms(text: str) -> tuple[str, ...]:
    """``"RS256,ES256"`` as a tuple; anything but the asymmetric algorithms above is a ValueError."""
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unsupported = [name for name in chosen if name not in KEY_TYPES]
    if unsupported or not chosen:
        raise ValueError(f"OIDC algorithms must be among {', '.join(KEY_TYPES)}, not {text!r}")
    return chosen


def key_fits(alg: str, key: SigningKey) -> bool:
    """True when ``key`` may verify a token whose header says ``alg``."""
    if key.jwk.key_type != KEY_TYPES[alg] or (key.alg is not None and key.alg != alg):
        return False
    return alg not in _CURVE_ALGORITHM or key.jwk.algorithm_name == alg


def scopes_of(value: Any) -> list[Scope] | None:
    """The known scopes in a scopes claim (string or list); None when the claim is absent."""
    if value is None:
        return None
    words = value.split() if isinstance(value, str) else value if isinstance(value, list) else []
    known = {scope.value for scope in Scope}
    return [Scope(word) for word in words if isinstance(word, str) and word in known]


@dataclass(frozen=True)
class OidcSettings:
    """What the verifier checks and how claims map to a tenant."""

    issuer: str
    audience: str
    algorithms: tuple[str, ...]
    leeway: float = 30.0
    tenant_claim: str = "tenant"
    scopes_claim: str = "scope"


class JwtVerifier:
    """Turns a bearer JWT into a `Principal`, or raises a 401."""

    def __init__(self, settings: OidcSettings, jwks: JwksCache) -> None:
        self.settings = settings
        self.jwks = jwks
        self._claim_index: tuple[Policy, dict[str, TenantPolicy]] | None = None

    async def claims(self, token: str) -> dict[str, Any]:
        """The verified claims of ``token``."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise unauthenticated("malformed") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.settings.algorithms:
            raise unauthenticated("algorithm")
        if kid is not None and not isinstance(kid, str):
            raise unauthenticated("malformed")
        key = await self.jwks.get(kid)
        if key is None:
            raise unauthenticated("unknown_kid")
        if not key_fits(alg, key):
            raise unauthenticated("key_type")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.jwk.key,
                algorithms=[alg],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            reason = next((why for kind, why in _FAILURES if isinstance(error, kind)), "invalid_jwt")
            raise unauthenticated(reason) from None
        return claims

    async def authenticate(self, token: str, policy: Policy) -> Principal:
        """The principal ``token`` proves under ``policy``."""
        claims = await self.claims(token)
        subject = claims.get("sub")
        return within(
            self._tenant(claims.get(self.settings.tenant_claim), policy),
            "jwt",
            subject if isinstance(subject, str) else "",
            scopes=scopes_of(claims.get(self.settings.scopes_claim)),
            until=float(claims["exp"]),  # required, and a number once PyJWT has checked it
        )

    def _tenant(self, value: Any, policy: Policy) -> TenantPolicy | None:
        if not isinstance(value, str):
            return None
        if self._claim_index is None or self._claim_index[0] is not policy:
            index = {claim: t for t in policy.tenants.values() for claim in t.oidc_values}
            self._claim_index = (policy, index)
        return policy.tenants.get(value) or self._claim_index[1].get(value)

    async def close(self) -> None:
        """Release the JWKS client."""
        await self.jwks.close()
