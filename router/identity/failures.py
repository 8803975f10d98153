"""Authentication and authorization failures: one 401 and one 403, with reasons kept internal.

The client hears only "invalid credential" (401) or "not allowed" (403), so a caller probing keys
or tokens learns nothing about which check failed. The reason goes to a metric label, never with
the credential itself.
"""

from __future__ import annotations

from inferflux.router.errors import ErrorCode, UpstreamError

UNAUTHENTICATED = "invalid or missing credential"
FORBIDDEN = "the credential does not allow this request"


class AuthFailure(UpstreamError):
    """A refused request; ``reason`` (a short fixed word) is for metrics and debugging only."""

    def __init__(self, code: ErrorCode, message: str, reason: str) -> None:
        super().__init__(code, message)
        self.reason = reason


def unauthenticated(reason: str) -> AuthFailure:
    """401 ``invalid_token``: missing, malformed, forged, expired or revoked, or tenant suspended."""
    return AuthFailure(ErrorCode.INVALID_TOKEN, UNAUTHENTICATED, reason)


def forbidden(reason: str) -> AuthFailure:
    """403 ``insufficient_scope``: a valid credential without the route's scope or the model."""
    return AuthFailure(ErrorCode.INSUFFICIENT_SCOPE, FORBIDDEN, reason)
