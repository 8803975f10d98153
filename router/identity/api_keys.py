"""API keys: generated once, shown once, stored only as a keyed hash.

A key reads ``ifx_<key id>_<secret>``: a recognisable prefix (so secret scanners and people can tell
what leaked), a public 16-character key id (so the router finds the record in one lookup, and logs
can name the key), and 256 random bits. The store keeps HMAC-SHA-256 of the whole key under the
router's hashing secret: a stolen store alone cannot be used to check guesses offline, and
comparisons run in constant time.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Sequence
from pathlib import Path

from inferflux.crds.policy import ApiKeyRecord
from inferflux.crds.tenant import Scope
from inferflux.router.identity.failures import unauthenticated
from inferflux.router.identity.principal import Principal, within
from inferflux.router.policy.effective import Policy

PREFIX = "ifx_"
SECRET_BYTES = 32  # 256 bits
_KEY = re.compile(r"^ifx_([a-z2-7]{16})_([A-Za-z0-9_-]{43})$")


def new_key_id() -> str:
    """A random public key id: 16 base32 characters (80 bits), lower case."""
    return base64.b32encode(secrets.token_bytes(10)).decode().lower()


def key_id_of(key: str) -> str | None:
    """The key id inside ``key``, or None when ``key`` is not shaped like one of ours."""
    match = _KEY.fullmatch(key)
    return match.group(1) if match else None


class KeyHasher:
    """HMAC-SHA-256 under the router's hashing secret (a mounted Secret, never in the store)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("the API-key hashing secret must be at least 32 bytes")
        self._secret = secret

    def digest(self, key: str) -> str:
        """The hex digest stored for ``key``."""
        return hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()

    def matches(self, key: str, record: ApiKeyRecord) -> bool:
        """True when ``key`` is the key ``record`` was made for (constant-time comparison)."""
        return hmac.compare_digest(self.digest(key), record.digest)


def load_hasher(secret_file: str) -> KeyHasher:
    """The hasher keyed by ``secret_file`` (INFERFLUX_AUTH_SECRET_FILE); without one, a random key.

    ``python -m inferflux.router`` never gets here without the file: with auth on it refuses to
    start without one (router/__main__.py) and passes its hasher in. The random key serves routers
    built in-process (tests), whose keys need not outlive them.
    """
    if not secret_file:
        return KeyHasher(secrets.token_bytes(SECRET_BYTES))
    return KeyHasher(Path(secret_file).read_bytes().strip())


def authenticate(policy: Policy, hasher: KeyHasher, key: str, now: dt.datetime) -> Principal:
    """The principal ``key`` proves under ``policy``, or a 401.

    A key is refused when it is not one of ours, unknown, forged, revoked, past its ``expiresAt``
    (which is also how a rotated-out key stops after its overlap), or its tenant is gone or
    suspended.
    """
    key_id = key_id_of(key)
    if key_id is None:
        raise unauthenticated("malformed")
    record = policy.keys.get(key_id)
    if record is None:
        raise unauthenticated("unknown_key")
    if not hasher.matches(key, record):
        raise unauthenticated("bad_key")
    if record.revoked_at is not None:
        raise unauthenticated("revoked")
    if record.expires_at is not None and record.expires_at <= now:
        raise unauthenticated("expired")
    return within(
        policy.tenants.get(record.tenant),
        "api_key",
        key_id,
        scopes=record.scopes,
        models=record.models,
        until=record.expires_at.timestamp() if record.expires_at is not None else math.inf,
    )


def generate(
    hasher: KeyHasher,
    tenant: str,
    *,
    name: str = "",
    scopes: Sequence[Scope] | None = None,
    models: Sequence[str] | None = None,
    expires_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> tuple[str, ApiKeyRecord]:
    """A new key and the record to store; the key itself is returned once and kept nowhere."""
    key_id = new_key_id()
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
    record = ApiKeyRecord(
        id=key_id,
        tenant=tenant,
        digest=hasher.digest(key),
        last4=key[-4:],
        name=name,
        scopes=list(scopes) if scopes is not None else None,
        models=list(models) if models is not None else None,
        created_at=now or dt.datetime.now(dt.UTC),
        expires_at=expires_at,
    )
    return key, record
