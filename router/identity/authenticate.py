"""The router's identity stage: who is calling (401 if unknown), and may they use this route (403).

`Authenticator.admit` runs before every handler when auth is on. It looks up the route's scope
(`scopes.route_scopes`; open routes cost one dict lookup), finds the credential (`credentials`),
proves it — an API key against the policy's key records, a JWT against the issuer's JWKS, or,
without either, the client certificate's subject under mTLS — and checks the scope. The principal
goes into the ASGI scope under ``inferflux.principal``; handlers call `permit_model` once they have
parsed the body and know the model.

Proving a credential costs an HMAC (API key) or a signature check (JWT, hundreds of µs), so a
proven credential is remembered in memory — never written anywhere — until the policy changes (a
revocation, a tenant edit) or the credential expires, whichever comes first.

Every refusal is counted in ``inferflux_router_auth_failures{reason}``; the credential never is.
"""

from __future__ import annotations

import datetime as dt
import time

from prometheus_client import CollectorRegistry

from inferflux.crds.tenant import Scope
from inferflux.router.asgi import Scope as AsgiScope
from inferflux.router.identity import api_keys, mtls
from inferflux.router.identity.credentials import presented
from inferflux.router.identity.failures import AuthFailure, forbidden, unauthenticated
from inferflux.router.identity.jwks import JwksCache
from inferflux.router.identity.jwt import JwtVerifier, OidcSettings, parse_algorithms
from inferflux.router.identity.principal import Principal
from inferflux.router.identity.scopes import prefix_scope, route_scopes
from inferflux.router.labelled import Counter
from inferflux.router.metrics import PREFIX
from inferflux.router.policy.effective import Policy, PolicyHolder
from inferflux.router.settings import Settings, SettingsError

PRINCIPAL = "inferflux.principal"
_AUTHENTICATOR = "inferflux.authenticator"
REMEMBERED = 4096  # proven credentials kept; past this the memory starts over


class Authenticator:
    """Identifies and authorizes requests against the current policy."""

    def __init__(
        self,
        settings: Settings,
        holder: PolicyHolder,
        jwt_verifier: JwtVerifier | None = None,
        hasher: api_keys.KeyHasher | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.holder = holder
        self.jwt = jwt_verifier
        self.hasher = hasher or api_keys.load_hasher(settings.auth_secret_file)
        self.scopes = route_scopes(settings.metrics_auth)
        self.certificates = bool(settings.tls_client_ca_file)
        self._proven: dict[str, Principal] = {}
        self._proven_under: Policy | None = None
        self.failures = Counter(
            PREFIX + "auth_failures",
            "Requests refused by the identity stage, by reason (never the credential).",
            ["reason"],
            registry=registry,
        )

    async def identify(self, scope: AsgiScope) -> Principal:
        """The principal behind the request's credential, or a 401."""
        policy = self.holder.current
        token = presented(scope)
        if token is None:
            principal = mtls.authenticate(scope, policy) if self.certificates else None
            if principal is None:
                raise unauthenticated("missing")
            return principal
        if policy is not self._proven_under:  # any policy change may revoke: start over
            self._proven, self._proven_under = {}, policy
        known = self._proven.get(token)
        if known is not None and known.until > time.time():
            return known
        principal = await self._prove(token, policy)
        if self._proven_under is policy:  # not if the policy changed while a JWKS fetch was awaited
            if len(self._proven) >= REMEMBERED:
                self._proven = {}
            self._proven[token] = principal
        return principal

    async def _prove(self, token: str, policy: Policy) -> Principal:
        if token.startswith(api_keys.PREFIX):
            return api_keys.authenticate(policy, self.hasher, token, dt.datetime.now(dt.UTC))
        if self.jwt is not None and token.count(".") == 2:
            return await self.jwt.authenticate(token, policy)
        raise unauthenticated("unrecognised")

    @staticmethod
    def authorize(principal: Principal, needed: Scope) -> None:
        """A 403 unless ``principal`` carries ``needed``."""
        if needed not in principal.scopes:
            raise forbidden("scope")

    async def admit(self, scope: AsgiScope) -> None:
        """Let the request through to its handler, or raise the 401/403 it gets instead."""
        needed = self.scopes.get((scope["method"], scope["path"])) or prefix_scope(scope["path"])
        if needed is None:
            return
        try:
            principal = await self.identify(scope)
            self.authorize(principal, needed)
        except AuthFailure as failure:
            self.failures.labels(failure.reason).inc()
            raise
        scope[PRINCIPAL] = principal
        scope[_AUTHENTICATOR] = self

    async def close(self) -> None:
        """Release the JWKS client."""
        if self.jwt is not None:
            await self.jwt.close()


def principal_of(scope: AsgiScope) -> Principal | None:
    """The request's principal; None when auth is off (or the route is open)."""
    principal: Principal | None = scope.get(PRINCIPAL)
    return principal


def permit_model(scope: AsgiScope, model: str) -> None:
    """A 403 when the request's principal may not use ``model``; nothing when auth is off."""
    principal = scope.get(PRINCIPAL)
    if principal is None or principal.may_use(model):
        return
    scope[_AUTHENTICATOR].failures.labels("model").inc()
    raise forbidden("model")


def jwt_verifier(settings: Settings) -> JwtVerifier | None:
    """The OIDC verifier the settings describe, None without an issuer."""
    if not settings.oidc_issuer:
        return None
    if not settings.oidc_audience:
        raise SettingsError("INFERFLUX_OIDC_AUDIENCE is required with INFERFLUX_OIDC_ISSUER")
    try:
        algorithms = parse_algorithms(settings.oidc_algorithms)
    except ValueError as error:
        raise SettingsError(f"INFERFLUX_OIDC_ALGORITHMS: {error}") from None
    oidc = OidcSettings(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        algorithms=algorithms,
        leeway=settings.oidc_leeway_seconds,
        tenant_claim=settings.oidc_tenant_claim,
        scopes_claim=settings.oidc_scopes_claim,
    )
    jwks = JwksCache(
        settings.oidc_issuer, settings.oidc_jwks_url, min_refresh=settings.oidc_jwks_refresh_seconds
    )
    return JwtVerifier(oidc, jwks)


def build(
    settings: Settings,
    holder: PolicyHolder,
    registry: CollectorRegistry | None = None,
    hasher: api_keys.KeyHasher | None = None,
) -> Authenticator | None:
    """The authenticator for ``settings``; None when auth is off. ``hasher`` is the process's shared
    one (the admin API issues keys with it); without it, one is loaded from the settings."""
    if not settings.auth:
        return None
    return Authenticator(settings, holder, jwt_verifier(settings), hasher, registry)
