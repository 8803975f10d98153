"""Prompt hashes: keyed per tenant, so equal prompts of two tenants do not match, nor a plain hash."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from inferflux.router.audit.prompt_hash import PromptHasher

SECRET = b"s" * 32


def test_same_tenant_and_text_give_the_same_digest() -> None:
    assert PromptHasher(SECRET).digest("a", "hello") == PromptHasher(SECRET).digest("a", "hello")


def test_tenants_and_secrets_change_the_digest() -> None:
    hasher = PromptHasher(SECRET)
    digests = {
        hasher.digest("a", "hello"),
        hasher.digest("b", "hello"),
        hasher.digest(None, "hello"),
        PromptHasher(b"t" * 32).digest("a", "hello"),
        hashlib.sha256(b"hello").hexdigest(),
    }
    assert len(digests) == 5


def test_the_key_is_hkdf_of_the_secret_with_the_tenant_as_context() -> None:
    key = HKDF(hashes.SHA256(), 32, None, b"inferflux audit prompt v1\x00team-a").derive(SECRET)
    expected = hmac.new(key, b"hello", hashlib.sha256).hexdigest()
    assert PromptHasher(SECRET).digest("team-a", "hello") == expected


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        PromptHasher(b"short")
