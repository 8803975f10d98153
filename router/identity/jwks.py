"""The identity provider's signing keys (JWKS), fetched without blocking and cached.

The JWKS address comes from ``INFERFLUX_OIDC_JWKS_URL`` or, when that is empty, from the issuer's
``/.well-known/openid-configuration``. Keys are fetched on first use, refreshed when the cache is
older than ``max_age``, and refreshed when a token names an unknown ``kid`` (a provider that has
just rotated its key) — but at most once per ``min_refresh`` seconds, so tokens with made-up kids
cannot make the router hammer the issuer. A failed fetch keeps the keys already known.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jwt

if TYPE_CHECKING:  # aiohttp is imported on the first fetch: a router without OIDC never loads it
    import aiohttp

log = logging.getLogger("inferflux.router.identity")
DISCOVERY_PATH = "/.well-known/openid-configuration"


@dataclass(frozen=True)
class SigningKey:
    """One JWKS entry: the usable key, and the algorithm the JWK itself pins (if it does)."""

    jwk: jwt.PyJWK
    alg: str | None


class JwksCache:
    """Signing keys by ``kid``; `get` refreshes (single flight, rate-limited) when one is unknown."""

    def __init__(
        self,
        issuer: str,
        jwks_url: str = "",
        *,
        min_refresh: float = 10.0,
        max_age: float = 600.0,
        timeout: float = 5.0,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.jwks_url = jwks_url
        self.min_refresh = min_refresh
        self.max_age = max_age
        self.timeout = timeout
        self.keys: Mapping[str, SigningKey] = {}
        self.fetches = 0
        self._fetched_at = -float("inf")
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    async def get(self, kid: str | None) -> SigningKey | None:
        """The key named ``kid`` (None: the only key, if there is exactly one), else None."""
        if time.monotonic() - self._fetched_at > self.max_age or self._find(kid) is None:
            await self.refresh()
        return self._find(kid)

    def _find(self, kid: str | None) -> SigningKey | None:
        if kid is None:
            return next(iter(self.keys.values())) if len(self.keys) == 1 else None
        return self.keys.get(kid)

    async def refresh(self) -> None:
        """Fetch the JWKS unless another fetch ran less than ``min_refresh`` seconds ago."""
        if time.monotonic() - self._fetched_at < self.min_refresh:
            return
        async with self._lock:
            if time.monotonic() - self._fetched_at < self.min_refresh:
                return  # a concurrent caller fetched while this one waited
            self._fetched_at = time.monotonic()
            self.fetches += 1
            import aiohttp

            try:
                self.keys = parse_jwks(await self._get_json(await self._jwks_address()))
            except (aiohttp.ClientError, TimeoutError, ValueError) as error:
                log.warning("fetching the OIDC signing keys failed: %s", type(error).__name__)

    async def _jwks_address(self) -> str:
        if not self.jwks_url:
            document = await self._get_json(self.issuer + DISCOVERY_PATH)
            address = document.get("jwks_uri")
            if not isinstance(address, str) or not address:
                raise ValueError("the issuer's openid-configuration has no jwks_uri")
            self.jwks_url = address
        return self.jwks_url

    async def _get_json(self, url: str) -> dict[str, Any]:
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        async with self._session.get(url) as response:
            response.raise_for_status()
            document = await response.json(content_type=None)
        if not isinstance(document, dict):
            raise ValueError(f"{url} did not answer a JSON object")
        return document

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def parse_jwks(document: dict[str, Any]) -> dict[str, SigningKey]:
    """The signing keys in a JWKS document by ``kid``; keys we cannot use are skipped."""
    keys: dict[str, SigningKey] = {}
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ValueError("a JWKS needs a 'keys' list")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue  # an unsupported key type or a malformed entry: never usable for us
        alg = entry.get("alg")
        keys[str(entry.get("kid", index))] = SigningKey(key, alg if isinstance(alg, str) else None)
    return keys
