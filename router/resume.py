"""Resume tokens: an HMAC over the key id, the stream id, the next offset and an expiry.

``<kid>.<stream_id>.<offset>.<expires>.<signature>``, where the signature is HMAC-SHA256 with the
key named ``kid`` over everything before it. Several keys are in play at once: new tokens are
signed with the first key of the keyring, and any listed key still verifies, so keys rotate with
no downtime by first adding a new key in front, then removing the old one after a TTL. A token
whose key is gone, or whose signature does not match, is forged (401); an honest token past its
expiry is gone (410).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass

log = logging.getLogger("inferflux.router.resume")

_KID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_STREAM = re.compile(r"^[0-9a-f]{8,64}$")


class KeyringError(ValueError):
    """The keys file is malformed; the message names the line."""


class TokenError(Exception):
    """A resume token that cannot be honoured, with the status to answer (401 forged, 410 gone)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Keyring:
    """HMAC keys by id; the first one signs."""

    keys: tuple[tuple[str, bytes], ...]

    @property
    def signing(self) -> tuple[str, bytes]:
        """The (kid, secret) that signs new tokens."""
        return self.keys[0]

    def secret(self, kid: str) -> bytes | None:
        """The secret for ``kid``, or None when that key is not (or no longer) in play."""
        for known, secret in self.keys:
            if known == kid:
                return secret
        return None


def parse_keyring(text: str) -> Keyring:
    """``kid=secret`` lines (blank lines and ``#`` comments ignored); the first key signs."""
    keys: list[tuple[str, bytes]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        kid, sep, secret = line.partition("=")
        kid, secret = kid.strip(), secret.strip()
        if not sep or not _KID.match(kid):
            raise KeyringError(f"line {number}: expected kid=secret with kid of [A-Za-z0-9_-]")
        if len(secret) < 16:
            raise KeyringError(f"line {number}: secret of key {kid!r} is shorter than 16 characters")
        keys.append((kid, secret.encode()))
    if not keys:
        raise KeyringError("no keys")
    return Keyring(tuple(keys))


def ephemeral_keyring() -> Keyring:
    """A random key for a single router process (tokens die with it; fine for local mode)."""
    return Keyring((("ephemeral", secrets.token_bytes(32)),))


class KeyHolder:
    """The keyring currently in force (swapped whole on rotation)."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring


class KeyringFile(KeyHolder):
    """A keys file, re-read when it changes so that rotation needs no restart."""

    def __init__(self, path: str) -> None:
        self.path = path
        stat = os.stat(path)
        self._stamp: tuple[int, int] = (stat.st_mtime_ns, stat.st_size)
        with open(path, encoding="utf-8") as handle:
            self.keyring = parse_keyring(handle.read())  # at startup a bad file is fatal

    def reload(self) -> Keyring | None:
        """Re-read the file if it changed; a bad file keeps the previous keys (and is logged)."""
        stat = os.stat(self.path)
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        with open(self.path, encoding="utf-8") as handle:
            try:
                keyring = parse_keyring(handle.read())
            except KeyringError as error:
                log.error("keeping the previous resume keys: %s", error)
                return None
        self.keyring = keyring
        return keyring


def _signature(secret: bytes, message: str) -> str:
    digest = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(keyring: Keyring, stream_id: str, offset: int, ttl: float, now: float | None = None) -> str:
    """A token that resumes ``stream_id`` at ``offset`` until ``ttl`` seconds from ``now``."""
    kid, secret = keyring.signing
    expires = int((time.time() if now is None else now) + ttl)
    message = f"{kid}.{stream_id}.{offset}.{expires}"
    return f"{message}.{_signature(secret, message)}"


def verify(keyring: Keyring, token: str, now: float | None = None) -> tuple[str, int]:
    """The (stream_id, offset) a token resumes; raises `TokenError` 401 when forged, 410 when expired."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 5 or not parts[2].isdigit() or not parts[3].isdigit() or not _STREAM.match(parts[1]):
        raise TokenError(401, "resume_token is malformed")
    kid, stream_id, offset, expires, signature = parts
    secret = keyring.secret(kid)
    if secret is None:
        raise TokenError(401, "resume_token is signed with an unknown or retired key")
    if not hmac.compare_digest(signature, _signature(secret, f"{kid}.{stream_id}.{offset}.{expires}")):
        raise TokenError(401, "resume_token signature does not match")
    if int(expires) < (time.time() if now is None else now):
        raise TokenError(410, "resume_token has expired")
    return stream_id, int(offset)
