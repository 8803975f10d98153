"""The JWKS cache against a real HTTP server: discovery, explicit address, rate-limited refresh,
and an unreachable issuer keeping the keys already known."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from inferflux.router.identity.jwks import JwksCache, parse_jwks


async def test_discovery_and_explicit_address(jwks_server) -> None:
    jwks_server.add("k1", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    discovered = JwksCache(jwks_server.url)
    explicit = JwksCache("https://unused.example", jwks_server.url + "/keys")
    try:
        for cache in (discovered, explicit):
            found = await cache.get("k1")
            assert found is not None
            assert found.jwk.key_type == "RSA"
        assert discovered.jwks_url == jwks_server.url + "/keys"
    finally:
        await discovered.close()
        await explicit.close()


async def test_unknown_kids_refresh_at_most_once_per_interval(jwks_server) -> None:
    jwks_server.add("k1", ec.generate_private_key(ec.SECP256R1()))
    cache = JwksCache(jwks_server.url, min_refresh=3600)
    try:
        assert await cache.get("k1") is not None
        for n in range(10):
            assert await cache.get(f"nope-{n}") is None
        assert jwks_server.fetches == 1
        cache.min_refresh = 0
        jwks_server.add("k2", ec.generate_private_key(ec.SECP256R1()))
        assert await cache.get("k2") is not None
        assert jwks_server.fetches == 2
    finally:
        await cache.close()


async def test_an_unreachable_issuer_keeps_the_known_keys(jwks_server) -> None:
    jwks_server.add("k1", ec.generate_private_key(ec.SECP256R1()))
    cache = JwksCache(jwks_server.url, min_refresh=0)
    try:
        assert await cache.get("k1") is not None
        await jwks_server.stop()
        assert await cache.get("other") is None  # the refresh failed ...
        assert await cache.get("k1") is not None  # ... and k1 is still trusted
    finally:
        await cache.close()


async def test_a_token_without_kid_needs_a_single_key(jwks_server) -> None:
    jwks_server.add("only", ec.generate_private_key(ec.SECP256R1()))
    cache = JwksCache(jwks_server.url)
    try:
        only = await cache.get(None)
        assert only is not None
        assert only is cache.keys["only"]
        jwks_server.add("second", ec.generate_private_key(ec.SECP256R1()))
        cache.keys = parse_jwks(jwks_server.document())
        assert await cache.get(None) is None  # ambiguous: refuse rather than try every key
    finally:
        await cache.close()


def test_unusable_entries_are_skipped() -> None:
    keys = parse_jwks(
        {
            "keys": [
                {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
                {"kty": "nonsense", "kid": "odd"},
                "not an object",
            ]
        }
    )
    assert keys == {}
    with pytest.raises(ValueError, match="keys"):
        parse_jwks({"no": "keys"})
