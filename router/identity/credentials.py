"""Finding the credential in a request: ``Authorization: Bearer``, ``x-api-key``, or a WebSocket
subprotocol ``bearer.<token>`` (browsers cannot set headers on a WebSocket).

A header that is there but unusable (another scheme, bad characters, absurd length) is a 401 like
a missing one; it never reaches a parser that could fail in a less controlled way.
"""

from __future__ import annotations

import re

from inferflux.router.asgi import Scope
from inferflux.router.identity.failures import unauthenticated

# A JWT from a generous identity provider fits in a few KiB; anything longer is refused unread.
MAX_CREDENTIAL_BYTES = 8192
# RFC 6750's b64token, which covers our API keys and JWTs (base64url segments joined by dots).
_TOKEN = re.compile(rb"[A-Za-z0-9\-._~+/]+=*")
_BEARER = b"bearer "
_SUBPROTOCOL = b"bearer."


def _token(raw: bytes) -> str:
    if len(raw) > MAX_CREDENTIAL_BYTES:
        raise unauthenticated("oversized")
    if not _TOKEN.fullmatch(raw):
        raise unauthenticated("malformed")
    return raw.decode("ascii")


def _from_authorization(value: bytes) -> str:
    if len(value) > MAX_CREDENTIAL_BYTES + len(_BEARER):
        raise unauthenticated("oversized")
    if value[: len(_BEARER)].lower() != _BEARER:
        raise unauthenticated("scheme")
    return _token(value[len(_BEARER) :].strip(b" "))


def _from_subprotocols(value: bytes) -> str | None:
    for offered in value.split(b","):
        offered = offered.strip()
        if offered[: len(_SUBPROTOCOL)].lower() == _SUBPROTOCOL:
            return _token(offered[len(_SUBPROTOCOL) :])
    return None


def _agree(found: str | None, another: str | None) -> str | None:
    if found is None or another is None or another == found:
        return found or another
    raise unauthenticated("ambiguous")  # two different credentials: refuse rather than pick one


def presented(scope: Scope) -> str | None:
    """The credential the request carries, None when it carries none; unusable ones raise a 401."""
    authorization = api_key = subprotocols = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value
        elif name == b"x-api-key":
            api_key = value
        elif name == b"sec-websocket-protocol":
            subprotocols = value
    found = _from_authorization(authorization) if authorization is not None else None
    if api_key is not None:
        found = _agree(found, _token(api_key.strip(b" ")))
    if subprotocols is not None:
        found = _agree(found, _from_subprotocols(subprotocols))
    return found
