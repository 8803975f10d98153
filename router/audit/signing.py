"""Ed25519 keys for checkpoints and pruning anchors, as PEM files (``inferctl audit keygen``).

The private key is mounted into each router replica; the public key is all a verifier needs. A key
id (the first 16 hex digits of SHA-256 of the raw public key) names the key in each checkpoint, so
a rotated key is visible in the chain.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class KeyFileError(ValueError):
    """A key file is missing, unreadable or not an Ed25519 PEM key; the message names the file."""


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name for a public key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _load(path: str | Path, kind: str, parse: Callable[[bytes], object]) -> object:
    """The key ``parse`` reads from the PEM file at ``path``; a `KeyFileError` naming the file otherwise."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise KeyFileError(f"{path}: cannot read: {error.strerror}") from None
    try:
        return parse(data)
    except (ValueError, TypeError):
        raise KeyFileError(f"{path}: not a PEM {kind} key") from None


class Signer:
    """Signs checkpoint and anchor bytes with the replica's private key."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)

    @classmethod
    def from_file(cls, path: str | Path) -> Signer:
        """The private key in a PEM file (PKCS#8, unencrypted)."""
        key = _load(path, "private", lambda data: serialization.load_pem_private_key(data, password=None))
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{path}: not an Ed25519 key")
        return cls(key)

    def sign(self, data: bytes) -> str:
        """The signature of ``data``, base64url without padding."""
        return _b64(self._private.sign(data))


class SignatureChecker:
    """Checks signatures against one public key."""

    def __init__(self, public: Ed25519PublicKey) -> None:
        self.public = public
        self.key_id = key_id(public)

    @classmethod
    def from_file(cls, path: str | Path) -> SignatureChecker:
        """The public key in a PEM file (SubjectPublicKeyInfo)."""
        key = _load(path, "public", serialization.load_pem_public_key)
        if not isinstance(key, Ed25519PublicKey):
            raise KeyFileError(f"{path}: not an Ed25519 key")
        return cls(key)

    def valid(self, data: bytes, signature: str) -> bool:
        """True when ``signature`` (base64url) signs ``data`` under this key."""
        try:
            self.public.verify(_unb64(signature), data)
        except (InvalidSignature, ValueError):
            return False
        return True


def generate(private_path: Path, public_path: Path) -> str:
    """A new key pair: the private key written 0600 (never over an existing file), the public key 0644.

    Returns the key id.
    """
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    public_path.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key_id(private.public_key())
