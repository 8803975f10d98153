"""Tenant secrets (for example a tenant's own provider API key), encrypted at rest with AES-GCM.

The key-encryption keys come from a mounted file (``INFERFLUX_KEK_FILE``), versioned for rotation::

    {"current": "k2", "keys": {"k1": "<base64 of 32 bytes>", "k2": "<base64 of 32 bytes>"}}

Each secret is sealed with the current key (AES-256-GCM from ``cryptography``) under a fresh random
96-bit nonce. The associated data binds the key version, the tenant and the secret's name, so a
ciphertext copied to another tenant or name, or altered in any way, fails to open. Rotation: add a
new key and make it current; secrets sealed before still open with their listed version, and
`reseal` (the admin API's re-encrypt operation) moves them to the current one; then the old key can
be removed from the file.

Nothing on the request path reads tenant secrets yet: the admin API stores and lists them only.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from inferflux.router.policy.store import SealedSecret

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
SECRET_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"  # noqa: S105 - the pattern of a name
_VERSION = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class SecretError(ValueError):
    """A secret cannot be sealed or opened; the message never contains secret material."""


class KeyFileError(ValueError):
    """The key-encryption key file is unusable; the message says why in one line."""


def _associated_data(version: str, tenant: str, name: str) -> bytes:
    # Length-prefixed fields: no two (version, tenant, name) triples encode alike.
    parts = [b"inferflux-tenant-secret/v1", version.encode(), tenant.encode(), name.encode()]
    return b"".join(len(part).to_bytes(2, "big") + part for part in parts)


class Keyring:
    """Versioned key-encryption keys: seal with ``current``, open with any listed version."""

    def __init__(self, current: str, keys: dict[str, bytes]) -> None:
        if current not in keys:
            raise KeyFileError(f"the current key {current!r} is not among the listed keys")
        for version, key in keys.items():
            if not _VERSION.fullmatch(version):
                raise KeyFileError(f"key version {version!r} must be 1-64 letters, digits, '_', '.' or '-'")
            if len(key) != KEY_BYTES:
                raise KeyFileError(f"key {version!r} must be {KEY_BYTES} bytes (base64 of 32 random bytes)")
        self.current = current
        self._keys = {version: AESGCM(key) for version, key in keys.items()}

    @classmethod
    def from_file(cls, path: str) -> Keyring:
        """The keyring in ``path``; a missing or malformed file raises `KeyFileError` (or OSError)."""
        with open(path, "rb") as handle:
            raw = handle.read()
        try:
            document = json.loads(raw)
            current = document["current"]
            encoded = document["keys"]
            if not isinstance(current, str) or not isinstance(encoded, dict):
                raise TypeError
            keys = {
                str(version): base64.b64decode(value, validate=True) for version, value in encoded.items()
            }
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise KeyFileError(
                f"{path}: expected JSON {{'current': version, 'keys': {{version: base64 key}}}}"
            ) from None
        return cls(current, keys)

    @property
    def versions(self) -> list[str]:
        """Every version that can open a secret."""
        return list(self._keys)

    def seal(self, tenant: str, name: str, plaintext: bytes, now: dt.datetime | None = None) -> SealedSecret:
        """``plaintext`` encrypted with the current key, bound to ``tenant`` and ``name``."""
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._keys[self.current].encrypt(
            nonce, plaintext, _associated_data(self.current, tenant, name)
        )
        return SealedSecret(
            tenant=tenant,
            name=name,
            key_version=self.current,
            nonce=base64.b64encode(nonce).decode(),
            ciphertext=base64.b64encode(ciphertext).decode(),
            updated_at=now or dt.datetime.now(dt.UTC),
        )

    def open(self, sealed: SealedSecret, tenant: str, name: str) -> bytes:
        """The plaintext of ``sealed``, which must belong to ``tenant``/``name``; else `SecretError`."""
        aead = self._keys.get(sealed.key_version)
        if aead is None:
            raise SecretError(
                f"secret {tenant}/{name} was sealed with key {sealed.key_version!r}, not listed"
            )
        try:
            nonce = base64.b64decode(sealed.nonce, validate=True)
            ciphertext = base64.b64decode(sealed.ciphertext, validate=True)
            return aead.decrypt(nonce, ciphertext, _associated_data(sealed.key_version, tenant, name))
        except (InvalidTag, ValueError, binascii.Error):
            raise SecretError(f"secret {tenant}/{name} does not open: tampered or moved") from None

    def reseal(self, sealed: SealedSecret) -> SealedSecret | None:
        """``sealed`` encrypted again with the current key, or None when it already is."""
        if sealed.key_version == self.current:
            return None
        plaintext = self.open(sealed, sealed.tenant, sealed.name)
        return self.seal(sealed.tenant, sealed.name, plaintext)
