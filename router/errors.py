"""One normalised vocabulary for everything that can go wrong upstream, and the OpenAI error shape.

Runtime pods and external providers fail in many dialects; the router (and the provider adapters
that come later) translate each failure into one `ErrorCode`, raise it as an `UpstreamError`, and
answer the client with the body the official OpenAI SDKs parse: ``{"error": {...}}``.
"""

from __future__ import annotations

import enum
from typing import Any

import orjson


class ErrorCode(enum.StrEnum):
    """Why a request failed, independent of which upstream failed it."""

    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    UNAVAILABLE = "unavailable"
    BAD_REQUEST = "bad_request"
    AUTH = "auth"
    CONTENT_FILTERED = "content_filtered"
    CONTEXT_LENGTH = "context_length"
    UPSTREAM_ERROR = "upstream_error"
    NOT_FOUND = "not_found"
    OVERLOADED = "overloaded"
    # A missing, malformed, forged, expired or revoked credential (RFC 6750's code, not a secret).
    INVALID_TOKEN = "invalid_token"  # noqa: S105
    INSUFFICIENT_SCOPE = "insufficient_scope"  # a valid credential not allowed this route or model
    INSUFFICIENT_QUOTA = "insufficient_quota"  # a budget would be exceeded (OpenAI's code)
    GUARDRAIL_BLOCKED = "guardrail_blocked"  # a guardrail refused the input or the output
    CONFLICT = "conflict"  # e.g. a request id already in flight
    INPUT_TOO_LARGE = "input_too_large"  # more text than the tenant's guardrails allow


# The HTTP status the router answers with, and the OpenAI ``error.type`` the SDKs expect.
_STATUS: dict[ErrorCode, int] = {
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.AUTH: 401,
    ErrorCode.CONTENT_FILTERED: 400,
    ErrorCode.CONTEXT_LENGTH: 400,
    ErrorCode.UPSTREAM_ERROR: 502,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.OVERLOADED: 429,
    ErrorCode.INVALID_TOKEN: 401,
    ErrorCode.INSUFFICIENT_SCOPE: 403,
    ErrorCode.INSUFFICIENT_QUOTA: 429,
    ErrorCode.GUARDRAIL_BLOCKED: 400,
    ErrorCode.CONFLICT: 409,
    ErrorCode.INPUT_TOO_LARGE: 413,
}
_TYPE: dict[ErrorCode, str] = {
    ErrorCode.RATE_LIMITED: "rate_limit_error",
    ErrorCode.TIMEOUT: "timeout_error",
    ErrorCode.UNAVAILABLE: "service_unavailable_error",
    ErrorCode.BAD_REQUEST: "invalid_request_error",
    ErrorCode.AUTH: "authentication_error",
    ErrorCode.CONTENT_FILTERED: "invalid_request_error",
    ErrorCode.CONTEXT_LENGTH: "invalid_request_error",
    ErrorCode.UPSTREAM_ERROR: "api_error",
    ErrorCode.NOT_FOUND: "invalid_request_error",
    ErrorCode.OVERLOADED: "rate_limit_error",
    ErrorCode.INVALID_TOKEN: "authentication_error",
    ErrorCode.INSUFFICIENT_SCOPE: "permission_error",
    ErrorCode.INSUFFICIENT_QUOTA: "insufficient_quota",
    ErrorCode.GUARDRAIL_BLOCKED: "invalid_request_error",
    ErrorCode.CONFLICT: "invalid_request_error",
    ErrorCode.INPUT_TOO_LARGE: "invalid_request_error",
}
# RFC 6750 challenges for the router's own authentication failures.
_CHALLENGE: dict[ErrorCode, bytes] = {
    ErrorCode.INVALID_TOKEN: b'Bearer error="invalid_token"',
    ErrorCode.INSUFFICIENT_SCOPE: b'Bearer error="insufficient_scope"',
}
# Codes worth trying on another replica or provider: the request itself was not at fault.
RETRYABLE = frozenset(
    {ErrorCode.UNAVAILABLE, ErrorCode.TIMEOUT, ErrorCode.UPSTREAM_ERROR, ErrorCode.OVERLOADED}
)


def status_for(code: ErrorCode) -> int:
    """The HTTP status the client sees for ``code``."""
    return _STATUS[code]


def code_for_status(status: int) -> ErrorCode:
    """Classify an upstream HTTP status that came without a better explanation."""
    if status == 429:
        return ErrorCode.RATE_LIMITED
    if status in (401, 403):
        return ErrorCode.AUTH
    if status == 404:
        return ErrorCode.NOT_FOUND
    if status == 408 or status == 504:
        return ErrorCode.TIMEOUT
    if status == 503:
        return ErrorCode.UNAVAILABLE
    if 400 <= status < 500:
        return ErrorCode.BAD_REQUEST
    return ErrorCode.UPSTREAM_ERROR


class UpstreamError(Exception):
    """A failure already classified: what went wrong, what to answer, and when to come back."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else status_for(code)
        self.retry_after = retry_after
        self.param = param

    @property
    def retryable(self) -> bool:
        """True when another replica or provider might succeed where this one failed."""
        return self.code in RETRYABLE

    def body(self) -> dict[str, Any]:
        """The OpenAI error document for this failure."""
        return error_body(self.code, self.message, param=self.param)

    def headers(self) -> list[tuple[bytes, bytes]]:
        """Extra response headers: ``retry-after`` (whole seconds) when known, the auth challenge."""
        challenge = _CHALLENGE.get(self.code)
        if challenge is not None:
            return [(b"www-authenticate", challenge)]
        if self.retry_after is None:
            return []
        return [(b"retry-after", str(max(1, round(self.retry_after))).encode())]


def error_body(code: ErrorCode, message: str, *, param: str | None = None) -> dict[str, Any]:
    """The OpenAI error shape: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": _TYPE[code], "param": param, "code": code.value}}


def error_bytes(code: ErrorCode, message: str, *, param: str | None = None) -> bytes:
    """`error_body` serialised, ready to send."""
    return orjson.dumps(error_body(code, message, param=param))
