"""The prompt as a keyed hash: HMAC-SHA-256 under a key derived per tenant from the audit secret.

A plain hash of a common prompt ("hello") could be found by hashing guesses; a keyed hash cannot be
checked without the secret, and a key per tenant (HKDF-SHA-256, the tenant name as context) keeps
one tenant's hashes from being compared with another's. Whoever holds the secret can still confirm
that a given text was sent, which is the point of the record.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MIN_SECRET_BYTES = 32
_CONTEXT = b"inferflux audit prompt v1\x00"


class PromptHasher:
    """Per-tenant HMAC keys derived from one secret (>= 32 bytes), cached after first use."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the audit secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self._keys: dict[str, bytes] = {}

    @classmethod
    def from_file(cls, path: str | Path) -> PromptHasher:
        """The secret in ``path`` (surrounding whitespace ignored)."""
        return cls(Path(path).read_bytes().strip())

    def key_for(self, tenant: str | None) -> bytes:
        """The tenant's HMAC key (tenant None: requests without one, e.g. auth off)."""
        name = tenant or ""
        key = self._keys.get(name)
        if key is None:
            kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_CONTEXT + name.encode())
            key = self._keys[name] = kdf.derive(self._secret)
        return key

    def digest(self, tenant: str | None, text: str) -> str:
        """Hex HMAC-SHA-256 of ``text`` under the tenant's key."""
        return hmac.new(self.key_for(tenant), text.encode(), hashlib.sha256).hexdigest()
