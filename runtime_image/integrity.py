"""Integrity of model weights: the sha256 digest and the Ed25519 signed manifest.

Shared by the runtime (it refuses to serve a file with the wrong digest), its fetch init container,
and the local mode and ``inferctl pull``.

The manifest of a model is the bytes ``sha256:<hex digest>``; a publisher signs it with Ed25519 and
``spec.source.signature`` carries the base64 signature. Checking the signature over the *expected*
digest before downloading, and the digest of the bytes after, proves the file is the signed one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

ED25519_KEY_BYTES = 32


class IntegrityError(ValueError):
    """The weights, their signature or the key are not what they must be; the message says which."""


def manifest(sha256_hex: str) -> bytes:
    """The signed manifest of weights with this digest."""
    return f"sha256:{sha256_hex}".encode()


def load_public_key(material: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from raw 32 bytes, their base64, or a PEM ``PUBLIC KEY`` block."""
    text = material.strip()
    if text.startswith(b"-----BEGIN"):
        try:
            key = load_pem_public_key(text)
        except ValueError:
            raise IntegrityError("the public key PEM cannot be parsed") from None
        if not isinstance(key, Ed25519PublicKey):
            raise IntegrityError("the public key is not an Ed25519 key")
        return key
    raw = material if len(material) == ED25519_KEY_BYTES else _b64(text, "public key")
    if len(raw) != ED25519_KEY_BYTES:
        raise IntegrityError(f"an Ed25519 public key has {ED25519_KEY_BYTES} bytes, this one {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def verify_signature(sha256_hex: str, signature_b64: str, public_key: Ed25519PublicKey) -> None:
    """Raise `IntegrityError` unless ``signature_b64`` signs the manifest of ``sha256_hex``."""
    signature = _b64(signature_b64.encode(), "signature")
    try:
        public_key.verify(signature, manifest(sha256_hex))
    except InvalidSignature:
        raise IntegrityError(
            f"the Ed25519 signature does not match sha256:{sha256_hex[:12]}… under the given public key"
        ) from None


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    """Lower-case hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def integrity_problem(path: Path, expected_sha256: str) -> str | None:
    """One readable line explaining why ``path`` must not be served, or None when it may be."""
    if not path.is_file():
        return f"model file not found: {path}"
    if not expected_sha256:
        return None
    actual = file_sha256(path)
    if actual != expected_sha256.strip().lower():
        return f"model file {path} has sha256 {actual}, expected {expected_sha256}; refusing to serve"
    return None


def signature_problem(sha256_hex: str, signature_b64: str, public_key_file: str) -> str | None:
    """One readable line when the signed manifest does not check out, or None when it does.

    No signature means nothing to check; a signature without its key, or a key file that cannot be
    read or parsed, is a problem: a pod told to check a signature never serves unchecked weights.
    """
    if not signature_b64:
        return None
    if not public_key_file:
        return "a model signature is set but no public key file (INFERFLUX_MODEL_PUBLIC_KEY_FILE)"
    if not sha256_hex:
        return "a model signature is set but no sha256 (INFERFLUX_MODEL_SHA256) for it to sign"
    try:
        key = load_public_key(Path(public_key_file).read_bytes())
        verify_signature(sha256_hex.strip().lower(), signature_b64, key)
    except OSError as error:
        return f"cannot read the model's public key {public_key_file}: {error.strerror}"
    except IntegrityError as error:
        return f"{error}; refusing to serve"
    return None


def env_signature_problem(sha256_hex: str, environ: Mapping[str, str]) -> str | None:
    """`signature_problem` with the signature and key file the operator renders into a container's
    environment (``INFERFLUX_MODEL_SIGNATURE``, ``INFERFLUX_MODEL_PUBLIC_KEY_FILE``)."""
    return signature_problem(
        sha256_hex,
        environ.get("INFERFLUX_MODEL_SIGNATURE", ""),
        environ.get("INFERFLUX_MODEL_PUBLIC_KEY_FILE", ""),
    )


def _b64(data: bytes, what: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise IntegrityError(f"the {what} is not valid base64") from None
