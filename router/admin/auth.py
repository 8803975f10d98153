"""Who may call the admin API: the bootstrap token, or an API key that carries the ``admin`` scope.

The bootstrap token (``INFERFLUX_ADMIN_TOKEN_FILE``) is compared in constant time. An API key must
be one of ours, match its stored digest, be neither revoked nor expired, belong to a tenant that
exists, is not suspended and holds ``admin``, and carry ``admin`` itself (a key narrows its tenant).
Without either configured, every admin request is refused.

A route may accept a narrower scope besides ``admin`` (the audit export accepts ``audit:read``);
`AdminAuth.caller` then says who called, so the route can keep a tenant-scoped caller to its tenant.

API keys are verified by the router's own `api_keys.authenticate` (router/identity/), so a key
means the same on both listeners. OIDC tokens and client certificates are not accepted here.
"""

from __future__ import annotations

import datetime as dt
import enum
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from inferflux.crds.tenant import Scope
from inferflux.router.identity import api_keys
from inferflux.router.identity.api_keys import KeyHasher
from inferflux.router.identity.failures import AuthFailure
from inferflux.router.policy.effective import PolicyHolder

MAX_CREDENTIAL_BYTES = 4096


class Verdict(enum.Enum):
    """The outcome of an admin credential check."""

    ALLOWED = "allowed"
    INVALID = "invalid"  # missing, malformed, unknown, forged, revoked, expired: 401
    INSUFFICIENT = "insufficient"  # a valid credential without the admin scope: 403


@dataclass(frozen=True)
class Caller:
    """Who passed the check: ``tenant`` None and ``actor`` "bootstrap" for the bootstrap token."""

    verdict: Verdict
    actor: str = ""
    tenant: str | None = None
    admin: bool = False  # holds the admin scope (or the bootstrap token): every tenant


BOOTSTRAP = "bootstrap"
_ADMIN_ONLY = frozenset({Scope.ADMIN})


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not authorization or len(authorization) > MAX_CREDENTIAL_BYTES:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class AdminAuth:
    """The bootstrap token and admin-scoped API keys."""

    def __init__(
        self,
        holder: PolicyHolder,
        hasher: KeyHasher | None,
        token: str | None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.holder = holder
        self.hasher = hasher
        self._token = token.encode() if token else None
        self.clock = clock

    @classmethod
    def token_from_file(cls, path: str) -> str:
        """The bootstrap token in ``path`` (surrounding whitespace ignored); at least 16 characters."""
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
        if len(token) < 16:
            raise ValueError(f"{path}: the admin token must be at least 16 characters")
        return token

    def check(self, authorization: str | None) -> Verdict:
        """Whether the ``Authorization`` header grants admin rights."""
        return self.caller(authorization).verdict

    def caller(self, authorization: str | None, accepted: frozenset[Scope] = _ADMIN_ONLY) -> Caller:
        """Who the ``Authorization`` header proves; allowed with ``admin`` or a scope in ``accepted``."""
        token = bearer(authorization)
        if token is None:
            return Caller(Verdict.INVALID)
        if self._token is not None and hmac.compare_digest(token.encode(), self._token):
            return Caller(Verdict.ALLOWED, BOOTSTRAP, None, admin=True)
        return self._check_key(token, accepted | _ADMIN_ONLY)

    def _check_key(self, key: str, accepted: frozenset[Scope]) -> Caller:
        if self.hasher is None:
            return Caller(Verdict.INVALID)
        try:
            principal = api_keys.authenticate(self.holder.current, self.hasher, key, self.clock())
        except AuthFailure:
            return Caller(Verdict.INVALID)
        allowed = bool(principal.scopes & accepted)
        verdict = Verdict.ALLOWED if allowed else Verdict.INSUFFICIENT
        return Caller(verdict, principal.subject, principal.tenant, admin=Scope.ADMIN in principal.scopes)
