"""The secret finder: known key formats, key blocks, assigned passwords and random-looking tokens."""

from __future__ import annotations

import random
import string

import pytest

from inferflux.router.guardrails import credentials
from inferflux.router.guardrails.credentials import entropy_floor, find_secrets, looks_random, shannon_entropy
from inferflux.router.identity.api_keys import KeyHasher, generate

RANDOM = random.Random(18)


def token(size: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    while True:
        value = "".join(RANDOM.choice(alphabet) for _ in range(size))
        if looks_like_mixed(value):
            return value


def looks_like_mixed(value: str) -> bool:
    return (
        any(c.isdigit() for c in value)
        and any(c.isupper() for c in value)
        and any(c.islower() for c in value)
    )


def found(text: str) -> list[str]:
    return [text[a:b] for a, b in sorted(set(find_secrets(text)))]


@pytest.mark.parametrize(
    "key",
    [
        "sk-proj-" + token(48),
        "sk-ant-api03-" + token(60),
        "ghp_" + token(36),
        "github_pat_" + token(22) + "_" + token(59),
        "AKIAIOSFODNN7EXAMPLE",
        "xoxb-123456789012-1234567890123-" + token(24),
        "glpat-" + token(20),
        "AIza" + token(35),
        "hf_" + token(34),
        "npm_" + token(36),
        "sk_live_" + token(24),
    ],
)
def test_known_key_formats(key: str) -> None:
    assert found(f"the key is {key}.") == [key]


def test_inferflux_api_keys() -> None:
    key, _ = generate(KeyHasher(b"k" * 32), "team-a")
    assert found(f"Authorization: Bearer {key}") == [key]


def test_a_private_key_block_and_an_unterminated_one() -> None:
    block = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB\n-----END EC PRIVATE KEY-----"
    assert found(f"key:\n{block}\nthanks") == [block]
    cut = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAAS"
    assert found(f"pasted: {cut}") == [cut]
    assert found("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----") == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("password: Tr0ub4dor&3", "Tr0ub4dor&3"),
        ("Mein Passwort ist Sommer2024!", "Sommer2024!"),
        ("mot de passe = Ch4ton!x", "Ch4ton!x"),
        ("api_key='abc123def456'", "abc123def456"),
        ("postgres://app:s3cr3t-pw@db:5432/x", "s3cr3t-pw"),
    ],
)
def test_assigned_secrets(text: str, value: str) -> None:
    assert found(text) == [value]


@pytest.mark.parametrize(
    "text",
    [
        "The password is correct.",
        "Das Passwort ist falsch.",
        "Set max_tokens: 1024.",
        "Install scikit-learn and sk-video.",
        "commit 3f2c1a9b8e7d6c5b4a3928170f6e5d4c3b2a1908",
        "id 123e4567-e89b-12d3-a456-426614174000",
        "getUserProfileSettingsForAccount2024",
        "Donaudampfschifffahrtsgesellschaft2024",
    ],
)
def test_not_secrets(text: str) -> None:
    assert found(text) == []


def test_random_tokens_are_found_and_hex_digests_are_not() -> None:
    misses = sum(not looks_random(token(size)) for size in (32, 40, 64) for _ in range(300))
    assert misses <= 9  # 1 %
    assert not looks_random("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")


def test_entropy() -> None:
    assert shannon_entropy("aaaa") == 0
    assert shannon_entropy("abcd") == 2
    assert entropy_floor(32) < entropy_floor(64)


def test_every_known_prefix_passes_the_gate_before_the_prefixes() -> None:
    # Adding a prefix without one of the gate's marks would hide its keys.
    assert all(
        credentials._may_hold_a_known_prefix(f"a {prefix}x b") for prefix in credentials.KNOWN_PREFIXES
    )
    assert not credentials._may_hold_a_known_prefix("The quick brown fox jumps over the lazy dog, A to Z.")
