"""Ed25519 keys in every accepted encoding, and signatures over the ``sha256:<digest>`` manifest."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from inferflux.runtime.integrity import IntegrityError, load_public_key, manifest, verify_signature

DIGEST = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
KEY = Ed25519PrivateKey.generate()
RAW = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
PEM = KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
SIGNATURE = base64.b64encode(KEY.sign(manifest(DIGEST))).decode()


@pytest.mark.parametrize("material", [RAW, base64.b64encode(RAW), base64.b64encode(RAW) + b"\n", PEM])
def test_a_public_key_loads_from_raw_base64_or_pem(material: bytes) -> None:
    verify_signature(DIGEST, SIGNATURE, load_public_key(material))


def test_the_manifest_is_the_prefixed_digest() -> None:
    assert manifest(DIGEST) == b"sha256:" + DIGEST.encode()


def test_a_signature_over_another_digest_is_refused() -> None:
    with pytest.raises(IntegrityError, match="does not match sha256:a5fd3b62230a"):
        verify_signature(
            DIGEST, base64.b64encode(KEY.sign(manifest("0" * 64))).decode(), load_public_key(RAW)
        )


def test_another_publishers_key_is_refused() -> None:
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(IntegrityError):
        verify_signature(DIGEST, SIGNATURE, other)


@pytest.mark.parametrize(
    ("material", "message"),
    [
        (b"not base64 !!", "not valid base64"),
        (base64.b64encode(b"short"), "has 32 bytes, this one 5"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "cannot be parsed"),
    ],
)
def test_bad_key_material_is_named(material: bytes, message: str) -> None:
    with pytest.raises(IntegrityError, match=message):
        load_public_key(material)


def test_a_malformed_signature_is_named() -> None:
    with pytest.raises(IntegrityError, match="signature is not valid base64"):
        verify_signature(DIGEST, "***", load_public_key(RAW))
