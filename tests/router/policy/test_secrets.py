"""Tenant secrets: AES-GCM bound to key version, tenant and name; rotation by re-encryption."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from inferflux.router.policy.secrets import KeyFileError, Keyring, SecretError

K1, K2 = os.urandom(32), os.urandom(32)


def keyring(current: str = "k1", **keys: bytes) -> Keyring:
    return Keyring(current, keys or {"k1": K1})


def test_a_sealed_secret_opens_for_its_tenant_and_name_only() -> None:
    ring = keyring()
    sealed = ring.seal("team-a", "openai", b"sk-canary-123")
    assert b"sk-canary-123" not in base64.b64decode(sealed.ciphertext)
    assert ring.open(sealed, "team-a", "openai") == b"sk-canary-123"
    with pytest.raises(SecretError, match="tampered or moved"):
        ring.open(sealed.model_copy(update={"tenant": "team-b"}), "team-b", "openai")
    with pytest.raises(SecretError):
        ring.open(sealed, "team-a", "anthropic")


def test_each_seal_uses_a_fresh_nonce() -> None:
    ring = keyring()
    one, two = ring.seal("t", "n", b"same"), ring.seal("t", "n", b"same")
    assert one.nonce != two.nonce
    assert one.ciphertext != two.ciphertext


def test_tampered_ciphertext_or_nonce_is_refused() -> None:
    ring = keyring()
    sealed = ring.seal("team-a", "openai", b"value")
    raw = bytearray(base64.b64decode(sealed.ciphertext))
    raw[0] ^= 1
    flipped = sealed.model_copy(update={"ciphertext": base64.b64encode(bytes(raw)).decode()})
    with pytest.raises(SecretError):
        ring.open(flipped, "team-a", "openai")
    with pytest.raises(SecretError):
        ring.open(
            sealed.model_copy(update={"nonce": base64.b64encode(os.urandom(12)).decode()}), "team-a", "openai"
        )
    # Relabelling the key version is tampering too: the version is bound as associated data.
    both = keyring("k1", k1=K1, k2=K1)
    with pytest.raises(SecretError):
        both.open(sealed.model_copy(update={"key_version": "k2"}), "team-a", "openai")


def test_rotation_opens_old_versions_and_reseals_with_the_current_one() -> None:
    old = keyring("k1", k1=K1)
    sealed = old.seal("team-a", "openai", b"value")
    rotated = keyring("k2", k1=K1, k2=K2)
    assert rotated.open(sealed, "team-a", "openai") == b"value"
    fresh = rotated.reseal(sealed)
    assert fresh is not None
    assert fresh.key_version == "k2"
    assert rotated.reseal(fresh) is None, "already current"
    retired = keyring("k2", k2=K2)
    assert retired.open(fresh, "team-a", "openai") == b"value"
    with pytest.raises(SecretError, match="'k1', not listed"):
        retired.open(sealed, "team-a", "openai")


def test_key_file(tmp_path: Path) -> None:
    path = tmp_path / "kek.json"
    path.write_text(
        json.dumps(
            {
                "current": "k2",
                "keys": {"k1": base64.b64encode(K1).decode(), "k2": base64.b64encode(K2).decode()},
            }
        )
    )
    ring = Keyring.from_file(str(path))
    assert ring.current == "k2"
    assert ring.versions == ["k1", "k2"]
    for document, reason in (
        ("not json", "expected JSON"),
        (json.dumps({"current": "k9", "keys": {"k1": base64.b64encode(K1).decode()}}), "not among"),
        (json.dumps({"current": "k1", "keys": {"k1": base64.b64encode(b"short").decode()}}), "32 bytes"),
        (json.dumps({"current": "k1", "keys": {"k1": "!!!"}}), "expected JSON"),
    ):
        path.write_text(document)
        with pytest.raises(KeyFileError, match=reason):
            Keyring.from_file(str(path))
